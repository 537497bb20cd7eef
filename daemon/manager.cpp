// SPDX-License-Identifier: LGPL-2.1-or-later
#include "manager.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "log.h"
#include "request_name.h"

namespace lkmd {
namespace {

std::string joined(const std::vector<std::string> &items) {
    std::string text;
    for (const std::string &item : items)
        text += (text.empty() ? "" : ", ") + item;
    return text;
}

// Per-errno phrases in the manner of modprobe's, so that a user learns what to do next. The
// failing module is named only when it is not the one asked for (a dependency, or an alias's).
std::string insertFailure(const std::string &request, const std::string &failed, int error) {
    std::string reason;
    switch (-error) {
        case EACCES:
            return "denied by policy (Modules=" + failed + ")";
        case ENOENT:
            return "no such module";
        case ENOEXEC:
            reason = "invalid module format (see dmesg)";
            break;
        case ENOKEY:
        case EKEYREJECTED:
            reason = "module signature could not be verified (see dmesg)";
            break;
        case EPERM:
            reason = "not permitted: module loading is disabled or refused by an install command";
            break;
        default:
            reason = std::string(std::strerror(-error)) + " (see dmesg)";
    }
    if (failed.empty() || failed == normalizeModuleName(request))
        return reason;
    return "could not insert '" + failed + "': " + reason;
}

}  // namespace

// The module a worker is inserting right now, written by the worker, read by the loop.
struct Manager::Flight {
    class Progress {
    public:
        void set(const std::string &module) {
            std::lock_guard guard(lock_);
            module_ = module;
        }
        std::string get() const {
            std::lock_guard guard(lock_);
            return module_;
        }

    private:
        mutable std::mutex lock_;
        std::string module_;
    };

    std::string request;
    Origin origin = Origin::Bus;
    std::string device;
    bool autoclean = false;
    std::shared_ptr<Progress> progress = std::make_shared<Progress>();
    std::vector<FlightDone> waiters;
};

const char *RequestRecord::result() const {
    switch (-error) {
        case 0:
            return inserted.empty() ? "present" : "loaded";
        case EACCES:
            return "denied";
        case ENOENT:
            return "not-found";
        default:
            return invalidName ? "invalid" : "failed";
    }
}

Manager::Manager(ModuleBackend &backend, WorkerPool &pool, const KernelState &kernel,
                 Clock realtime, Clock monotonic)
    : backend_(backend),
      pool_(pool),
      kernel_(kernel),
      realtime_(std::move(realtime)),
      monotonic_(std::move(monotonic)),
      policy_(std::make_shared<const Policy>()) {}

void Manager::setPolicy(Policy policy) {
    // Loads in flight keep the snapshot they started with.
    policy_ = std::make_shared<const Policy>(std::move(policy));
}

void Manager::load(const std::string &request, Origin origin, Done done, LoadOptions options) {
    RequestRecord record;
    record.request = request;
    record.origin = origin;
    record.device = options.device;
    record.timeUsec = realtime_();
    record.startedUsec = monotonic_();
    if (const char *why = whyInvalidRequestName(request)) {
        record.invalidName = true;
        finishRequest(std::move(record), {-EINVAL, std::string("invalid module name: ") + why, {}},
                      done);
        return;
    }
    if (const std::string *rule = policy_->ruleDenyingRequest(request)) {
        finishRequest(std::move(record), {-EACCES, "denied by policy (Requests=" + *rule + ")", {}},
                      done);
        return;
    }
    std::vector<std::string> modules;
    int r = backend_.resolve(request, &modules);
    if (r < 0) {
        finishRequest(
            std::move(record),
            {r,
             r == -ENOENT ? "no such module"
                          : std::string("could not look up the module: ") + std::strerror(-r),
             {}},
            done);
        return;
    }
    std::string deniedModule;
    std::erase_if(modules, [&](const std::string &module) {
        if (!policy_->deniesModule(module))
            return false;
        deniedModule = module;
        return true;
    });
    if (modules.empty()) {
        finishRequest(std::move(record),
                      {-EACCES, "denied by policy (Modules=" + deniedModule + ")", {}}, done);
        return;
    }
    std::erase_if(modules, [this](const std::string &module) {
        if (isUnloading(module))  // live now, gone soon: load it again after the removal
            return false;
        const ModuleState state = backend_.state(module);
        return state == ModuleState::Builtin || state == ModuleState::Live;
    });
    if (modules.empty()) {
        finishRequest(std::move(record), {}, done);
        return;
    }

    // A modalias may name several modules: they load in parallel and the caller hears once all
    // have finished, with the first error if any.
    struct Pending {
        std::size_t remaining;
        RequestRecord record;
        Outcome outcome;
        Done done;
    };
    const bool autoclean = origin != Origin::Bus || options.autoclean;
    auto pending = std::make_shared<Pending>(Pending{modules.size(), std::move(record), {}, done});
    for (const std::string &module : modules) {
        auto start = [this, module, pending, request, autoclean] {
            insertModule(module, pending->record, autoclean,
                         [this, pending, request](int error, const std::string &failed,
                                                  const std::vector<std::string> &inserted) {
                             Outcome &outcome = pending->outcome;
                             for (const std::string &name : inserted)
                                 if (std::find(outcome.inserted.begin(), outcome.inserted.end(),
                                               name) == outcome.inserted.end())
                                     outcome.inserted.push_back(name);
                             if (error < 0 && outcome.error == 0) {
                                 outcome.error = error;
                                 outcome.message = insertFailure(request, failed, error);
                             }
                             if (--pending->remaining == 0)
                                 finishRequest(std::move(pending->record), std::move(outcome),
                                               pending->done);
                         });
        };
        auto unloading = unloading_.find(module);
        if (unloading != unloading_.end())
            unloading->second.push_back(std::move(start));
        else
            start();
    }
}

// Requests for a module already being inserted wait for that insertion ("one load, N answers")
// unless an init of that insertion is running: the request may then come from inside that init
// (KERNEL-FACTS 4), and waiting behind the load that caused it would deadlock. Such a request
// gets its own insertion, which the kernel settles as it does for modprobe.
bool Manager::canJoin(const Flight &flight) {
    const std::string current = flight.progress->get();
    return current.empty() || backend_.state(current) != ModuleState::Coming;
}

void Manager::insertModule(const std::string &module, const RequestRecord &request, bool autoclean,
                           FlightDone done) {
    if (backend_.state(module) == ModuleState::Coming) {
        awaitInit(module, request, autoclean, std::move(done));
        return;
    }
    auto existing = flights_.find(module);
    if (existing != flights_.end() && canJoin(*existing->second)) {
        existing->second->waiters.push_back(std::move(done));
        return;
    }
    auto flight = std::make_shared<Flight>();
    flight->request = request.request;
    flight->origin = request.origin;
    flight->device = request.device;
    flight->autoclean = autoclean;
    flight->waiters.push_back(std::move(done));
    if (existing == flights_.end())
        flights_.emplace(module, flight);

    pool_.submit([this, module, flight, policy = policy_](ModuleBackend &worker) {
        InsertControl control;
        control.allowed = [policy](const std::string &name) { return !policy->deniesModule(name); };
        control.inserting = [progress = flight->progress](const std::string &name) {
            progress->set(name);
        };
        std::vector<std::string> inserted;
        std::string failed;
        const int result = worker.insert(module, control, &inserted, &failed);
        flight->progress->set({});
        return [this, module, flight, result, inserted = std::move(inserted),
                failed = std::move(failed)] {
            finishFlight(module, flight, result, inserted, failed);
        };
    });
}

// The module's init is running, in lkmd or elsewhere. A second finit_module() would make the
// kernel wait for that init, and if this request comes from inside it, the init waits for the
// request: a deadlock kmod's modprobe runs into too. Instead wait a bounded time for the init:
// most inits finish within it, and an unfinished one most likely made this request itself.
void Manager::awaitInit(const std::string &module, const RequestRecord &request, bool autoclean,
                        FlightDone done) {
    pool_.submit(
        [this, module, request, autoclean, done = std::move(done)](ModuleBackend &worker) mutable {
            ModuleState state = worker.state(module);
            for (int i = 0; i < kInitWaitSteps && state == ModuleState::Coming; ++i) {
                std::this_thread::sleep_for(kInitWaitStep);
                state = worker.state(module);
            }
            return [this, module, request, autoclean, state, done = std::move(done)]() mutable {
                if (state == ModuleState::Absent) {  // its init failed: try it ourselves
                    insertModule(module, request, autoclean, std::move(done));
                    return;
                }
                if (state == ModuleState::Coming)
                    logger("loader")->info(
                        "Answered '{}' while the init of '{}' still runs (asked from inside it?)",
                        request.request, module);
                done(0, {}, {});
            };
        });
}

void Manager::finishFlight(const std::string &module, const std::shared_ptr<Flight> &flight,
                           int result, const std::vector<std::string> &inserted,
                           const std::string &failed) {
    auto registered = flights_.find(module);
    if (registered != flights_.end() && registered->second == flight)
        flights_.erase(registered);

    const std::uint64_t now = realtime_();
    for (const std::string &name : inserted) {
        ModuleRecord record;
        record.origin = flight->origin;
        record.trigger = flight->request;
        record.device = flight->device;
        record.loadedAtUsec = now;
        record.autoclean = flight->autoclean;
        record.identity = kernel_.moduleIdentity(name);
        registry_.record(name, std::move(record));
        const ModuleLogField field(name);
        logger("loader")->info("Inserted '{}' for '{}' ({})", name, flight->request,
                               originName(flight->origin));
        for (ManagerListener *listener : listeners_)
            listener->moduleLoaded(name, flight->origin);
    }
    if (!inserted.empty())
        save();
    if (result == -EEXIST)  // someone else inserted it meanwhile: what was asked for is there
        result = 0;
    for (const FlightDone &waiter : flight->waiters)
        waiter(result, failed, inserted);
}

void Manager::finishRequest(RequestRecord record, Outcome outcome, const Done &done) {
    record.durationUsec = monotonic_() - record.startedUsec;
    record.error = outcome.error;
    record.message = outcome.message;
    record.inserted = outcome.inserted;
    if (outcome.error == -EACCES)
        logger("loader")->warn("Refused '{}' ({}): {}", printable(record.request),
                               originName(record.origin), outcome.message);
    else if (outcome.error == -ENOENT)  // the kernel asks for junk too (netdev-<name>)
        logger("loader")->debug("No module for '{}' ({})", printable(record.request),
                                originName(record.origin));
    else if (outcome.error < 0)
        logger("loader")->info("Could not load '{}' ({}): {}", printable(record.request),
                               originName(record.origin), outcome.message);
    history_.push_back(std::move(record));
    if (history_.size() > kHistorySize)
        history_.pop_front();
    done(std::move(outcome));
}

Outcome Manager::checkUnloadable(const std::string &module) {
    switch (backend_.state(module)) {
        case ModuleState::Builtin:
            return {-EOPNOTSUPP, "module is built into the kernel", {}};
        case ModuleState::Absent: {
            std::vector<std::string> resolved;
            if (backend_.resolve(module, &resolved) < 0)
                return {-ENOENT, "no such module", {}};
            return {-ESRCH, "module is not loaded", {}};
        }
        default:
            break;
    }
    std::vector<LoadedModule> loaded;
    if (kernel_.readLoaded(&loaded) == 0) {
        auto it = std::find_if(loaded.begin(), loaded.end(),
                               [&](const LoadedModule &m) { return m.name == module; });
        if (it != loaded.end() && !it->holders.empty())
            return {-EBUSY, "module is in use by " + joined(it->holders), {}};
        if (it != loaded.end() && it->refcnt > 0)
            return {-EBUSY, "module is in use (refcnt " + std::to_string(it->refcnt) + ")", {}};
    }
    // refcnt stays 0 while a driver serves a live device; unloading would unbind it.
    const ModuleBindings bindings = kernel_.readBindings(module);
    if (!bindings.devices.empty())
        return {-EBUSY, "module is in use: its driver is bound to " + joined(bindings.devices), {}};
    return {};
}

void Manager::unload(const std::string &name, Done done, const char *reason) {
    if (const char *why = whyInvalidRequestName(name)) {
        done({-EINVAL, std::string("invalid module name: ") + why, {}});
        return;
    }
    const std::string module = normalizeModuleName(name);
    if (isUnloading(module)) {
        done({-EBUSY, "module is being unloaded", {}});
        return;
    }
    Outcome refusal = checkUnloadable(module);
    if (refusal.error < 0) {
        done(std::move(refusal));
        return;
    }
    unloading_[module];
    pool_.submit([this, module, reason, done = std::move(done)](ModuleBackend &worker) mutable {
        const int result = worker.remove(module);
        return [this, module, reason, result, done = std::move(done)] {
            finishUnload(module, reason, result, done);
        };
    });
}

void Manager::finishUnload(const std::string &module, const char *reason, int result,
                           const Done &done) {
    std::vector<std::function<void()>> deferred = std::move(unloading_[module]);
    unloading_.erase(module);
    if (result == 0) {
        registry_.forget(module);
        save();
        const ModuleLogField field(module);
        // Autoclean tells how long the module was idle; a caller's unload is told here.
        if (std::string_view(reason) != "idle")
            logger("loader")->info("Removed '{}' on request", module);
        for (ManagerListener *listener : listeners_)
            listener->moduleUnloaded(module, reason);
        done({});
    } else if (result == -EAGAIN || result == -EBUSY) {
        // The kernel settles the race with a user that appeared after our check.
        done({-EBUSY, "module is in use", {}});
    } else if (result == -ENOENT) {
        done({-ESRCH, "module is not loaded", {}});
    } else {
        done({result, std::strerror(-result), {}});
    }
    for (const auto &load : deferred)
        load();
}

int Manager::setPinned(const std::string &name, bool pinned) {
    ModuleRecord *record = registry_.findMutable(normalizeModuleName(name));
    if (record == nullptr)
        return -ESRCH;
    if (record->pinned != pinned) {
        record->pinned = pinned;
        save();
    }
    return 0;
}

// Written whole and renamed into place: a crash leaves the old state or the new, never half.
void Manager::save() {
    if (stateFile_.empty())
        return;
    const std::filesystem::path temporary = stateFile_.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << registry_.serialize();
        if (!out.flush()) {
            logger("loader")->warn("Could not write '{}', will retry on the next change",
                                   temporary.string());
            return;
        }
    }
    std::error_code ec;
    std::filesystem::rename(temporary, stateFile_, ec);
    if (ec)
        logger("loader")->warn("Could not replace '{}': {}, will retry on the next change",
                               stateFile_.string(), ec.message());
}

int Manager::restore() {
    std::ifstream in(stateFile_);
    if (!in)
        return 0;
    std::ostringstream text;
    text << in.rdbuf();
    ModuleRegistry previous;
    if (ModuleRegistry::parse(text.str(), &previous) < 0) {
        logger("loader")->warn("Ignoring '{}': not a state file of this version",
                               stateFile_.string());
        return -EINVAL;
    }
    std::size_t kept = 0;
    for (const auto &[name, record] : previous.records()) {
        // Same inode: the very load lkmd did. Otherwise someone unloaded it meanwhile, and a
        // module loaded again since then is not ours.
        const std::uint64_t identity = kernel_.moduleIdentity(name);
        if (identity == 0 || identity != record.identity)
            continue;
        registry_.record(name, record);
        ++kept;
    }
    logger("loader")->info("Restored {} of {} module records from '{}'", kept, previous.size(),
                           stateFile_.string());
    save();
    return static_cast<int>(kept);
}

int Manager::list(std::vector<ModuleView> *modules) {
    std::vector<LoadedModule> loaded;
    const int r = kernel_.readLoaded(&loaded);
    if (r < 0)
        return r;
    std::vector<std::string> names;
    for (const LoadedModule &module : loaded)
        names.push_back(module.name);
    const std::size_t before = registry_.size();
    registry_.retainOnly(names);
    if (registry_.size() != before)
        save();

    modules->clear();
    for (LoadedModule &module : loaded) {
        const ModuleRecord *record = registry_.find(module.name);
        modules->push_back({std::move(module), false,
                            record ? std::optional<ModuleRecord>(*record) : std::nullopt});
    }
    std::sort(modules->begin(), modules->end(), [](const ModuleView &a, const ModuleView &b) {
        return a.kernel.name < b.kernel.name;
    });
    return 0;
}

int Manager::get(const std::string &name, ModuleView *module, ModuleBindings *bindings) {
    if (whyInvalidRequestName(name) != nullptr)
        return -EINVAL;
    const std::string normalized = normalizeModuleName(name);
    std::vector<ModuleView> all;
    const int r = list(&all);
    if (r < 0)
        return r;
    auto it = std::find_if(all.begin(), all.end(),
                           [&](const ModuleView &m) { return m.kernel.name == normalized; });
    if (it != all.end()) {
        *module = std::move(*it);
        *bindings = kernel_.readBindings(normalized);
        return 0;
    }
    if (backend_.state(normalized) == ModuleState::Builtin) {
        *module = {};
        module->kernel.name = normalized;
        module->builtin = true;
        *bindings = kernel_.readBindings(normalized);
        return 0;
    }
    std::vector<std::string> resolved;
    return backend_.resolve(name, &resolved) < 0 ? -ENOENT : -ESRCH;
}

}  // namespace lkmd
