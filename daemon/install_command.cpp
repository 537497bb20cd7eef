// SPDX-License-Identifier: LGPL-2.1-or-later
#include "install_command.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "log.h"
#include "request_name.h"

namespace lkmd {

// What libkmod's own runner does, without its setenv() in a threaded process and with the
// default signal mask instead of the loop's (libkmod's system() inherits the caller's): a
// command must be stoppable like one modprobe ran (docs/kernel.md, "Threads").
int runInstallCommand(const std::string &module, const std::string &configured,
                      const std::string &options, const char *shell) {
    std::string command(configured);
    static constexpr std::string_view kVariable = "$CMDLINE_OPTS";
    for (std::size_t at = command.find(kVariable); at != std::string::npos;
         at = command.find(kVariable, at + options.size()))
        command.replace(at, kVariable.size(), options);

    std::vector<std::string> environment;
    for (char **variable = environ; *variable != nullptr; ++variable)
        if (!std::string_view(*variable).starts_with("MODPROBE_MODULE="))
            environment.emplace_back(*variable);
    environment.push_back("MODPROBE_MODULE=" + module);
    std::vector<char *> envp;
    for (std::string &variable : environment)
        envp.push_back(variable.data());
    envp.push_back(nullptr);

    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const char *argv[] = {shell, "-c", command.c_str(), nullptr};
    pid_t pid = -1;
    int r = posix_spawn(&pid, shell, nullptr, &attributes, const_cast<char **>(argv), envp.data());
    posix_spawnattr_destroy(&attributes);
    if (r != 0) {
        logger("kmod")->warn("Could not run the install command of '{}': {}", module,
                             std::strerror(r));
        return -EPERM;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -EPERM;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    logger("kmod")->info("The install command of '{}' failed ({} {}): {}", module,
                         WIFEXITED(status) ? "exit status" : "signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                         printable(command));
    return -EPERM;
}

}  // namespace lkmd
