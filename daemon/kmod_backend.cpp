// SPDX-License-Identifier: LGPL-2.1-or-later
#include "kmod_backend.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <set>

#include <libkmod.h>
#include <spdlog/spdlog.h>

#include "fallback_compile.h"
#include "log.h"
#include "request_name.h"

namespace lkmd {
namespace {

// print_action carries no user data; a plan is made by one call on one thread at a time.
thread_local std::vector<PlanStep> *t_plan = nullptr;

void recordPlannedStep(kmod_module *module, bool installCommand, const char *options) {
    if (t_plan != nullptr)
        t_plan->push_back({kmod_module_get_name(module), options ? options : "", installCommand});
}

void logFromKmod(void *data, int priority, const char * /*file*/, int /*line*/,
                 const char * /*function*/, const char *format, va_list args) {
    auto *logger = static_cast<spdlog::logger *>(data);
    char message[1024];
    const int length = std::vsnprintf(message, sizeof(message), format, args);
    if (length <= 0)
        return;
    std::string_view text(message, std::min<std::size_t>(length, sizeof(message) - 1));
    if (!text.empty() && text.back() == '\n')
        text.remove_suffix(1);
    spdlog::level::level_enum level = spdlog::level::debug;
    if (priority <= LOG_ERR)
        level = spdlog::level::err;
    else if (priority == LOG_WARNING)
        level = spdlog::level::warn;
    else if (priority <= LOG_INFO)
        level = spdlog::level::info;
    logger->log(level, "{}", text);
}

class ModuleRef {
public:
    explicit ModuleRef(kmod_module *module) : module_(module) {}
    ModuleRef(const ModuleRef &) = delete;
    ModuleRef &operator=(const ModuleRef &) = delete;
    ~ModuleRef() { kmod_module_unref(module_); }
    kmod_module *get() const { return module_; }

private:
    kmod_module *module_;
};

class ModuleList {
public:
    ModuleList() = default;
    ModuleList(const ModuleList &) = delete;
    ModuleList &operator=(const ModuleList &) = delete;
    ~ModuleList() { kmod_module_unref_list(list_); }
    kmod_list **out() { return &list_; }
    kmod_list *get() const { return list_; }

private:
    kmod_list *list_ = nullptr;
};

std::vector<std::string> namesOf(kmod_list *list) {
    std::vector<std::string> names;
    kmod_list *entry;
    kmod_list_foreach(entry, list) {
        ModuleRef module(kmod_module_get_module(entry));
        names.emplace_back(kmod_module_get_name(module.get()));
    }
    return names;
}

}  // namespace

std::unique_ptr<KmodBackend> KmodBackend::create(const std::filesystem::path &moduleDir,
                                                 int *error) {
    std::unique_ptr<KmodBackend> backend(new KmodBackend(moduleDir));
    *error = backend->openContext();
    if (*error < 0)
        return nullptr;
    return backend;
}

KmodBackend::KmodBackend(std::filesystem::path moduleDir) : moduleDir_(std::move(moduleDir)) {}

KmodBackend::~KmodBackend() {
    kmod_unref(ctx_);
}

int KmodBackend::openContext() {
    configFingerprint_ = configFingerprint();
    configCheckedAt_ = std::chrono::steady_clock::now();
    kmod_ctx *ctx = kmod_new(moduleDir_.empty() ? nullptr : moduleDir_.c_str(), nullptr);
    if (ctx == nullptr)
        return -ENOMEM;
    kmod_set_log_fn(ctx, logFromKmod, logger("kmod").get());
    // Loads the indexes once; lookups then need no open() per call.
    const int r = kmod_load_resources(ctx);
    if (r < 0) {
        kmod_unref(ctx);
        return r;
    }
    kmod_unref(ctx_);
    ctx_ = ctx;
    return 0;
}

// depmod rewrites modules.*.bin when a package installs a module; the loaded indexes would go
// stale.
// libkmod notices a new depmod index and added or removed modprobe.d files, but not a file
// edited in place; its config is read once per context. Hence a fingerprint of the config files.
std::string KmodBackend::configFingerprint() {
    namespace fs = std::filesystem;
    std::string fingerprint;
    for (const char *dir : {"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
                            "/usr/lib/modprobe.d", "/lib/modprobe.d"}) {
        std::error_code ec;
        for (const fs::directory_entry &entry : fs::directory_iterator(dir, ec)) {
            struct stat st {};
            if (stat(entry.path().c_str(), &st) < 0)
                continue;
            fingerprint += entry.path().string() + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                           std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size) +
                           ";";
        }
    }
    return fingerprint;
}

// Index files and config are looked at no more than once a second: a stat per file on every
// lookup would triple the cost of a resolution, and depmod's rewrite is no hurry.
bool KmodBackend::refreshIfStale(bool force) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - configCheckedAt_ < std::chrono::seconds(1))
        return false;
    configCheckedAt_ = now;
    bool stale = kmod_validate_resources(ctx_) != KMOD_RESOURCES_OK;
    if (!stale) {
        std::string fingerprint = configFingerprint();
        stale = fingerprint != configFingerprint_;
        configFingerprint_ = std::move(fingerprint);
    }
    if (!stale)
        return false;
    const int r = openContext();
    // Every worker has its own context and notices on its own: one line at info is enough.
    if (r < 0)
        logger("kmod")->warn("Could not reload the module index: {}, keeping the old one",
                             std::strerror(-r));
    else
        logger("kmod")->debug("Module index or modprobe.d changed on disk, reloaded");
    return r == 0;
}

int KmodBackend::resolve(const std::string &request, std::vector<std::string> *modules) {
    refreshIfStale(false);
    return resolveOnce(request, modules, false);
}

int KmodBackend::resolveOnce(const std::string &request, std::vector<std::string> *modules,
                             bool retried) {
    ModuleList found;
    int r = kmod_module_new_from_lookup(ctx_, request.c_str(), found.out());
    if (r < 0)
        return r;

    std::vector<std::string> names = namesOf(found.get());
    const bool byOwnName = names.size() == 1 && names.front() == normalizeModuleName(request);
    if (!byOwnName && !names.empty()) {
        // modprobe applies "blacklist" to alias lookups only
        // (KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY).
        ModuleList allowed;
        r = kmod_module_apply_filter(ctx_, KMOD_FILTER_BLACKLIST, found.get(), allowed.out());
        if (r < 0)
            return r;
        names = namesOf(allowed.get());
    }
    // Nothing found: before saying so, make sure no depmod ran within the last second (a module
    // installed just now, then its device plugged in).
    if (names.empty() && !retried && refreshIfStale(true))
        return resolveOnce(request, modules, true);
    if (names.empty())
        return -ENOENT;
    *modules = std::move(names);
    return 0;
}

std::vector<std::string> KmodBackend::hiddenByBlacklist(const std::string &request) {
    ModuleList found;
    if (kmod_module_new_from_lookup(ctx_, request.c_str(), found.out()) < 0)
        return {};
    std::vector<std::string> all = namesOf(found.get());
    if (all.size() == 1 && all.front() == normalizeModuleName(request))
        return {};  // asked for by its own name: the blacklist does not apply
    ModuleList allowed;
    if (kmod_module_apply_filter(ctx_, KMOD_FILTER_BLACKLIST, found.get(), allowed.out()) < 0)
        return {};
    const std::vector<std::string> kept = namesOf(allowed.get());
    std::erase_if(all, [&](const std::string &name) {
        return std::find(kept.begin(), kept.end(), name) != kept.end();
    });
    return all;
}

ModuleState KmodBackend::state(const std::string &module) {
    kmod_module *raw = nullptr;
    if (kmod_module_new_from_name(ctx_, module.c_str(), &raw) < 0)
        return ModuleState::Absent;
    ModuleRef ref(raw);
    switch (kmod_module_get_initstate(ref.get())) {
        case KMOD_MODULE_BUILTIN:
            return ModuleState::Builtin;
        case KMOD_MODULE_LIVE:
            return ModuleState::Live;
        case KMOD_MODULE_COMING:
            return ModuleState::Coming;
        case KMOD_MODULE_GOING:
            return ModuleState::Going;
        default:
            return ModuleState::Absent;
    }
}

// libkmod plans the load in a dry run (dependencies, softdeps, install commands, options from
// modprobe.d and the kernel command line), and lkmd carries it out step by step, so that it knows
// exactly which insertions were its own and can skip what modprobe would skip. modprobe treats
// the module and its modules.dep dependencies as required and ignores failures of everything
// else in the plan (libkmod's "required" flag, not exported); the same set is computed here.
int KmodBackend::plan(const std::string &module, std::vector<PlanStep> *steps) {
    refreshIfStale(false);
    kmod_module *raw = nullptr;
    int r = kmod_module_new_from_name(ctx_, module.c_str(), &raw);
    if (r < 0)
        return r;
    ModuleRef target(raw);

    std::vector<PlanStep> planned;
    t_plan = &planned;
    // No blacklist flag: resolve() applied it to aliases, and a module asked for by name loads
    // despite "blacklist", as with modprobe.
    r = kmod_module_probe_insert_module(target.get(), KMOD_PROBE_DRY_RUN | KMOD_PROBE_IGNORE_LOADED,
                                        nullptr, nullptr, nullptr, recordPlannedStep);
    t_plan = nullptr;
    if (r < 0)
        return r;

    std::set<std::string> required{kmod_module_get_name(target.get())};
    kmod_list *dependencies = kmod_module_get_dependencies(target.get());
    for (const std::string &name : namesOf(dependencies))
        required.insert(name);
    kmod_module_unref_list(dependencies);
    for (PlanStep &step : planned) {
        step.required = required.count(step.module) != 0;
        if (step.installCommand && isOwnRefusal(step.module))
            step.installCommand = false;
    }
    *steps = std::move(planned);
    return 0;
}

bool KmodBackend::isOwnRefusal(const std::string &module) {
    kmod_module *raw = nullptr;
    if (kmod_module_new_from_name(ctx_, module.c_str(), &raw) < 0)
        return false;
    ModuleRef ref(raw);
    const char *configured = kmod_module_get_install_commands(ref.get());
    return configured != nullptr && configured == refusalInstallCommand(module);
}

int KmodBackend::insert(const PlanStep &step) {
    refreshIfStale(false);
    if (step.installCommand)
        return runInstallCommand(step);
    kmod_module *raw = nullptr;
    const int r = kmod_module_new_from_name(ctx_, step.module.c_str(), &raw);
    if (r < 0)
        return r;
    ModuleRef module(raw);
    return kmod_module_insert_module(module.get(), 0, step.options.c_str());
}

// What libkmod's own runner does ($CMDLINE_OPTS replaced by the options, MODPROBE_MODULE in the
// environment, /bin/sh -c), without its setenv() in a threaded process and with the default
// signal mask instead of the loop's: a command must be stoppable like one modprobe ran.
int KmodBackend::runInstallCommand(const PlanStep &step) {
    kmod_module *raw = nullptr;
    int r = kmod_module_new_from_name(ctx_, step.module.c_str(), &raw);
    if (r < 0)
        return r;
    ModuleRef module(raw);
    const char *configured = kmod_module_get_install_commands(module.get());
    if (configured == nullptr)
        return -ENOENT;
    std::string command(configured);
    static constexpr std::string_view kVariable = "$CMDLINE_OPTS";
    for (std::size_t at = command.find(kVariable); at != std::string::npos;
         at = command.find(kVariable, at + step.options.size()))
        command.replace(at, kVariable.size(), step.options);

    std::vector<std::string> environment;
    for (char **variable = environ; *variable != nullptr; ++variable)
        if (!std::string_view(*variable).starts_with("MODPROBE_MODULE="))
            environment.emplace_back(*variable);
    environment.push_back("MODPROBE_MODULE=" + step.module);
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
    const char *argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
    pid_t pid = -1;
    r = posix_spawn(&pid, "/bin/sh", nullptr, &attributes, const_cast<char **>(argv), envp.data());
    posix_spawnattr_destroy(&attributes);
    if (r != 0) {
        logger("kmod")->warn("Could not run the install command of '{}': {}", step.module,
                             std::strerror(r));
        return -EPERM;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -EPERM;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    logger("kmod")->info("The install command of '{}' failed ({} {}): {}", step.module,
                         WIFEXITED(status) ? "exit status" : "signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                         printable(command));
    return -EPERM;
}

int KmodBackend::remove(const std::string &module) {
    kmod_module *raw = nullptr;
    int r = kmod_module_new_from_name(ctx_, module.c_str(), &raw);
    if (r < 0)
        return r;
    ModuleRef ref(raw);
    return kmod_module_remove_module(ref.get(), KMOD_REMOVE_NOWAIT);
}

}  // namespace lkmd
