// SPDX-License-Identifier: LGPL-2.1-or-later
#include "kmod_backend.h"

#include <sys/stat.h>
#include <syslog.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <set>

#include <libkmod.h>
#include <spdlog/spdlog.h>

#include "kernel_state.h"
#include "log.h"

namespace lkmd {
namespace {

// One step of a load as libkmod plans it: a module to insert with its options, or an install
// command to run in its place.
struct PlannedStep {
    std::string module;
    bool installCommand = false;
    std::string options;
};

// Which module each worker is inserting, across all workers: since Linux 6.6 concurrent
// finit_module() calls for one file share one load and all return 0, so the return value alone
// cannot tell which of lkmd's insertions was the one that loaded it.
std::mutex g_claimsLock;
std::condition_variable g_claimReleased;
std::set<std::string> g_claims;

// Claims module, or waits for the worker that holds the claim to finish its insertion (so that
// this one's finit_module() never overtakes it and steals the credit). The wait is bounded: a
// request from inside that insertion's init must not wait for it forever.
bool claimOrWait(const std::string &module) {
    std::unique_lock guard(g_claimsLock);
    if (g_claims.insert(module).second)
        return true;
    g_claimReleased.wait_for(guard, std::chrono::seconds(1),
                             [&] { return g_claims.count(module) == 0; });
    return false;
}

void release(const std::string &module) {
    {
        std::lock_guard guard(g_claimsLock);
        g_claims.erase(module);
    }
    g_claimReleased.notify_all();
}

// print_action carries no user data; each worker thread plans one load at a time.
thread_local std::vector<PlannedStep> *t_plan = nullptr;

void recordPlannedStep(kmod_module *module, bool installCommand, const char *options) {
    if (t_plan != nullptr)
        t_plan->push_back({kmod_module_get_name(module), installCommand, options ? options : ""});
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

// libkmod plans the load (dependencies, softdeps, install commands, options from modprobe.d and
// the kernel command line) in a dry run; lkmd then checks the plan against its policy and
// inserts step by step, so that it knows exactly which insertions were its own: a concurrent
// loader's insertion answers -EEXIST.
int KmodBackend::insert(const std::string &module, const InsertControl &control,
                        std::vector<std::string> *inserted, std::string *failed) {
    refreshIfStale(false);
    kmod_module *raw = nullptr;
    int r = kmod_module_new_from_name(ctx_, module.c_str(), &raw);
    if (r < 0)
        return r;
    ModuleRef target(raw);

    std::vector<PlannedStep> plan;
    t_plan = &plan;
    // No blacklist flag: resolve() applied it to aliases, and a module asked for by name loads
    // despite "blacklist", as with modprobe.
    r = kmod_module_probe_insert_module(target.get(), KMOD_PROBE_DRY_RUN, nullptr, nullptr, nullptr,
                                        recordPlannedStep);
    t_plan = nullptr;
    if (r < 0)
        return r;
    if (control.allowed)
        for (const PlannedStep &step : plan)
            if (!control.allowed(step.module)) {
                *failed = step.module;
                return -EACCES;
            }

    for (const PlannedStep &step : plan) {
        *failed = step.module;
        r = kmod_module_new_from_name(ctx_, step.module.c_str(), &raw);
        if (r < 0)
            return r;
        ModuleRef stepModule(raw);
        if (control.inserting)
            control.inserting(step.module);
        if (step.installCommand) {
            // "install x /bin/false" is how distributions really block a module: it must fail.
            const bool wasAbsent = state(step.module) == ModuleState::Absent;
            r = kmod_module_probe_insert_module(stepModule.get(), 0, nullptr, nullptr, nullptr,
                                                nullptr);
            // libkmod reports a failed command with assorted codes; to the caller it is a refusal.
            if (r != 0)
                return -EPERM;
            if (wasAbsent && state(step.module) != ModuleState::Absent)
                inserted->push_back(step.module);
            continue;
        }
        // Still insert a module someone else is inserting: that waits until it is live, which
        // the next step may need. But only the first claimant counts it as its own.
        bool mine = false;
        while (state(step.module) == ModuleState::Absent) {
            if ((mine = claimOrWait(step.module)))
                break;
            if (state(step.module) == ModuleState::Absent)  // the claimant's insertion failed,
                continue;                                   // or the wait ran out: try again
        }
        const ModuleState now = state(step.module);
        if (!mine && (now == ModuleState::Live || now == ModuleState::Builtin))
            continue;  // inserted by another worker meanwhile
        r = kmod_module_insert_module(stepModule.get(), 0, step.options.c_str());
        if (mine)
            release(step.module);
        if (r == 0 && mine)
            inserted->push_back(step.module);
        else if (r != 0 && r != -EEXIST)
            return r;
    }
    failed->clear();
    return 0;
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
