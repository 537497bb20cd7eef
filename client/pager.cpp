// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pager.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace lkmd::client {
namespace {

// Words as a shell would split them, quotes and backslashes honoured as systemd does for
// $PAGER: "sh -c 'less -R'" is two words and a third.
std::vector<std::string> splitWords(const std::string &text) {
    std::vector<std::string> words;
    std::string word;
    bool inWord = false;
    char quote = 0;
    for (std::size_t i = 0; i < text.size(); i++) {
        const char c = text[i];
        if (quote != 0 && c == quote) {
            quote = 0;
        } else if (quote == 0 && (c == '\'' || c == '"')) {
            quote = c;
            inWord = true;
        } else if (quote != '\'' && c == '\\' && i + 1 < text.size()) {
            word += text[++i];
            inWord = true;
        } else if (quote == 0 && (c == ' ' || c == '\t' || c == '\n')) {
            if (inWord)
                words.push_back(std::move(word));
            word.clear();
            inWord = false;
        } else {
            word += c;
            inWord = true;
        }
    }
    if (inWord)
        words.push_back(std::move(word));
    return words;
}

bool isLess(const std::vector<std::string> &argv) {
    if (argv.empty())
        return false;
    const std::string &program = argv.front();
    const std::size_t slash = program.rfind('/');
    return program.substr(slash == std::string::npos ? 0 : slash + 1) == "less";
}

// In the child, when no pager could be started: pass the output through, as systemd does.
[[noreturn]] void copyThrough() {
    char buffer[4096];
    for (ssize_t n; (n = read(STDIN_FILENO, buffer, sizeof buffer)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write(STDOUT_FILENO, buffer, static_cast<std::size_t>(n)) != n)
            _exit(EXIT_FAILURE);
    }
    _exit(EXIT_SUCCESS);
}

}  // namespace

PagerChoice choosePager(const Getenv &getenv, bool secure, bool utf8) {
    PagerChoice choice;
    std::optional<std::string> configured = getenv("SYSTEMD_PAGER");
    const bool fromSystemdPager = configured.has_value();
    if (!configured)
        configured = getenv("PAGER");
    std::vector<std::string> argv =
        configured ? splitWords(*configured) : std::vector<std::string>{"less"};
    if (argv.empty() || argv == std::vector<std::string>{"cat"})
        return choice;
    // $SYSTEMD_PAGERSECURE set explicitly means the user vouches for the pager.
    if (secure && !fromSystemdPager && !getenv("SYSTEMD_PAGERSECURE") && !isLess(argv))
        argv = {"less"};
    choice.argv = std::move(argv);
    if (!getenv("LESS"))
        choice.environment.emplace_back("LESS", "FRSXMK");
    if (utf8 && !getenv("LESSCHARSET"))
        choice.environment.emplace_back("LESSCHARSET", "utf-8");
    if (secure)
        choice.environment.emplace_back("LESSSECURE", "1");
    return choice;
}

bool pagerSecure(const Getenv &getenv, uid_t effectiveUid, std::optional<uid_t> sessionOwner) {
    if (const std::optional<std::string> value = getenv("SYSTEMD_PAGERSECURE"))
        if (const std::optional<bool> flag = parseBoolean(*value))
            return *flag;
    return !sessionOwner || *sessionOwner != effectiveUid;
}

bool Pager::open(const PagerChoice &choice) {
    if (choice.argv.empty() || child_ >= 0)
        return false;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return false;
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return false;
    }
    if (pid == 0) {
        if (dup2(fds[0], STDIN_FILENO) < 0)
            _exit(EXIT_FAILURE);
        for (const auto &[name, value] : choice.environment)
            setenv(name.c_str(), value.c_str(), 1);
        std::vector<char *> argv;
        for (const std::string &word : choice.argv)
            argv.push_back(const_cast<char *>(word.c_str()));
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        copyThrough();
    }
    ::close(fds[0]);
    if (dup2(fds[1], STDOUT_FILENO) < 0) {
        ::close(fds[1]);
        kill(pid, SIGTERM);
        waitpid(pid, nullptr, 0);
        return false;
    }
    ::close(fds[1]);
    child_ = pid;
    return true;
}

void Pager::close() {
    if (child_ < 0)
        return;
    std::fflush(stdout);
    // The pager reads to the end of its input before it lets the user quit with everything shown.
    ::close(STDOUT_FILENO);
    while (waitpid(child_, nullptr, 0) < 0 && errno == EINTR) {
    }
    child_ = -1;
}

}  // namespace lkmd::client
