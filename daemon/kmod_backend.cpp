// SPDX-License-Identifier: LGPL-2.1-or-later
#include "kmod_backend.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <syslog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <set>

#include <libkmod.h>
#include <spdlog/spdlog.h>

#include "fallback_compile.h"
#include "install_command.h"
#include "log.h"
#include "request_name.h"
#include "scheduler.h"

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
    backend->fingerprint_ = fingerprintOf(backend->moduleDir_);
    backend->checkedAt_ = std::chrono::steady_clock::now();
    backend->ctx_ = openContext(backend->moduleDir_, error);
    if (backend->ctx_ == nullptr)
        return nullptr;
    return backend;
}

KmodBackend::KmodBackend(std::filesystem::path moduleDir) : moduleDir_(std::move(moduleDir)) {
    if (moduleDir_.empty()) {
        utsname uts{};
        uname(&uts);
        moduleDir_ = std::filesystem::path("/lib/modules") / uts.release;
    }
}

KmodBackend::~KmodBackend() {
    kmod_unref(ctx_);
}

kmod_ctx *KmodBackend::openContext(const std::filesystem::path &moduleDir, int *error) {
    kmod_ctx *ctx = kmod_new(moduleDir.c_str(), nullptr);
    if (ctx == nullptr) {
        *error = -ENOMEM;
        return nullptr;
    }
    kmod_set_log_fn(ctx, logFromKmod, logger("kmod").get());
    // Loads the indexes once; lookups then need no open() per call.
    *error = kmod_load_resources(ctx);
    if (*error < 0) {
        kmod_unref(ctx);
        return nullptr;
    }
    return ctx;
}

// depmod rewrites modules.*.bin when a package installs a module; the loaded indexes would go
// stale. libkmod notices a new depmod index and added or removed modprobe.d files
// (kmod_validate_resources()), but not a file edited in place: its config is read once per
// context. Hence a fingerprint of the index and the config files, which a job can take too.
std::string KmodBackend::fingerprintOf(const std::filesystem::path &moduleDir) {
    namespace fs = std::filesystem;
    std::string fingerprint;
    auto add = [&fingerprint](const fs::path &path) {
        struct stat st {};
        if (stat(path.c_str(), &st) < 0)
            return;
        fingerprint += path.string() + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                       std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size) + ";";
    };
    for (const char *dir : {"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
                            "/usr/lib/modprobe.d", "/lib/modprobe.d"}) {
        std::error_code ec;
        for (const fs::directory_entry &entry : fs::directory_iterator(dir, ec))
            add(entry.path());
    }
    for (const char *index :
         {"modules.dep.bin", "modules.alias.bin", "modules.symbols.bin", "modules.builtin.bin",
          "modules.builtin.alias.bin", "modules.softdep"})
        add(moduleDir / index);
    return fingerprint;
}

namespace {

// How many times any backend found the index or modprobe.d changed. The loop's context learns
// of a depmod first (it rechecks before answering "no such module") and then hands the plan to a
// worker, whose own context must not wait out its once-a-second limit to see the same change.
std::atomic<std::uint64_t> indexReloads{0};

}  // namespace

// Index files and config are looked at no more than once a second: a stat per file on every
// lookup would triple the cost of a resolution, and depmod's rewrite is no hurry. On the loop
// the look is a job's; here (a worker) it is inline.
bool KmodBackend::refreshIfStale(bool force) {
    if (indexReloads.load(std::memory_order_acquire) != seenReloads_)
        force = true;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - checkedAt_ < std::chrono::seconds(1))
        return false;
    checkedAt_ = now;
    if (runner_ != nullptr) {
        if (!checking_)
            startCheck();
        return false;
    }
    seenReloads_ = indexReloads.load(std::memory_order_acquire);
    std::string fingerprint = fingerprintOf(moduleDir_);
    if (kmod_validate_resources(ctx_) == KMOD_RESOURCES_OK && fingerprint == fingerprint_)
        return false;
    int r = 0;
    kmod_ctx *fresh = openContext(moduleDir_, &r);
    // Every worker has its own context and notices on its own: one line at debug is enough.
    if (fresh == nullptr) {
        logger("kmod")->warn("Could not reload the module index: {}, keeping the old one",
                             std::strerror(-r));
        return false;
    }
    adopt(fresh, std::move(fingerprint));
    return true;
}

void KmodBackend::adopt(kmod_ctx *fresh, std::string fingerprint) {
    kmod_unref(ctx_);
    ctx_ = fresh;
    fingerprint_ = std::move(fingerprint);
    ++generation_;
    seenReloads_ = indexReloads.fetch_add(1, std::memory_order_acq_rel) + 1;
    logger("kmod")->debug("Module index or modprobe.d changed on disk, reloaded");
}

void KmodBackend::serveLoop(JobRunner &runner) {
    runner_ = &runner;
}

void KmodBackend::recheck(std::function<void(bool changed)> done) {
    if (runner_ == nullptr) {
        done(refreshIfStale(true));
        return;
    }
    // A look that started before this lookup missed may predate the depmod it must see.
    (checking_ ? next_ : waiting_).push_back({generation_, std::move(done)});
    if (!checking_)
        startCheck();
}

// Stats and, when something changed, a new context with its indexes loaded: a job's, handed to
// the loop. The context is used by one thread at a time, first the worker's, then the loop's.
void KmodBackend::startCheck() {
    checking_ = true;
    checkedAt_ = std::chrono::steady_clock::now();
    seenReloads_ = indexReloads.load(std::memory_order_acquire);
    runner_->submit([this, alive = std::weak_ptr<int>(alive_), dir = moduleDir_,
                     known = fingerprint_](ModuleBackend &) -> JobRunner::Completion {
        std::string fingerprint = fingerprintOf(dir);
        kmod_ctx *fresh = nullptr;
        int r = 0;
        if (fingerprint != known && (fresh = openContext(dir, &r)) == nullptr)
            logger("kmod")->warn("Could not reload the module index: {}, keeping the old one",
                                 std::strerror(-r));
        return [this, alive, fresh, fingerprint = std::move(fingerprint)]() mutable {
            if (alive.expired()) {
                kmod_unref(fresh);
                return;
            }
            checkDone(fresh, std::move(fingerprint));
        };
    });
}

void KmodBackend::checkDone(kmod_ctx *fresh, std::string fingerprint) {
    if (fresh != nullptr)
        adopt(fresh, std::move(fingerprint));
    checking_ = false;
    std::vector<Waiter> answered = std::move(waiting_);
    waiting_ = std::move(next_);
    next_.clear();
    if (!waiting_.empty())
        startCheck();
    for (Waiter &waiter : answered)
        waiter.done(waiter.generation != generation_);
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
    // Nothing found: on a worker, make sure no depmod ran within the last second (a module
    // installed just now, then its device plugged in). The loop's caller asks recheck().
    if (names.empty() && !retried && runner_ == nullptr && refreshIfStale(true))
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

int KmodBackend::runInstallCommand(const PlanStep &step) {
    kmod_module *raw = nullptr;
    const int r = kmod_module_new_from_name(ctx_, step.module.c_str(), &raw);
    if (r < 0)
        return r;
    ModuleRef module(raw);
    const char *configured = kmod_module_get_install_commands(module.get());
    if (configured == nullptr)
        return -ENOENT;
    return lkmd::runInstallCommand(step.module, configured, step.options);
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
