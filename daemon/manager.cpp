// SPDX-License-Identifier: LGPL-2.1-or-later
#include "manager.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

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

// Per-errno phrases in the manner of modprobe's, so that a user learns what to do next.
std::string insertFailure(const std::string &module, int error) {
    std::string reason;
    switch (-error) {
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
    return "could not insert '" + module + "': " + reason;
}

}  // namespace

Manager::Manager(ModuleBackend &backend, WorkerPool &pool, const KernelState &kernel,
                 RealtimeClock clock)
    : backend_(backend), pool_(pool), kernel_(kernel), clock_(std::move(clock)) {}

void Manager::load(const std::string &request, Origin origin, Done done) {
    if (const char *why = whyInvalidRequestName(request)) {
        done({-EINVAL, std::string("invalid module name: ") + why, {}});
        return;
    }
    std::vector<std::string> modules;
    int r = backend_.resolve(request, &modules);
    if (r == -ENOENT) {
        done({-ENOENT, "no such module", {}});
        return;
    }
    if (r < 0) {
        done({r, std::string("could not look up the module: ") + std::strerror(-r), {}});
        return;
    }
    std::erase_if(modules, [this](const std::string &module) {
        const ModuleState state = backend_.state(module);
        return state == ModuleState::Builtin || state == ModuleState::Live;
    });
    if (modules.empty()) {
        done({});
        return;
    }

    // Every resolved module loads in parallel (a modalias may name several); the caller hears
    // once all have finished.
    struct Pending {
        std::size_t remaining;
        Outcome outcome;
        Done done;
    };
    auto pending = std::make_shared<Pending>(Pending{modules.size(), {}, std::move(done)});
    for (const std::string &module : modules) {
        pool_.submit([this, request, origin, module, pending](ModuleBackend &worker) {
            std::vector<std::string> inserted;
            const int result = worker.insert(module, &inserted);
            return [this, request, origin, module, pending, result,
                    inserted = std::move(inserted)]() mutable {
                finishInsert(request, origin, result, module, std::move(inserted),
                             &pending->outcome);
                if (--pending->remaining == 0)
                    pending->done(std::move(pending->outcome));
            };
        });
    }
}

void Manager::finishInsert(const std::string &request, Origin origin, int result,
                           const std::string &module, std::vector<std::string> inserted,
                           Outcome *aggregate) {
    const std::uint64_t now = clock_();
    for (const std::string &name : inserted) {
        registry_.record(name, {origin, request, now});
        logger("loader")->info("Inserted '{}' for '{}' ({})", name, request, originName(origin));
        if (listener_ != nullptr)
            listener_->moduleLoaded(name, origin);
        aggregate->inserted.push_back(name);
    }
    if (result == -EEXIST)  // someone else inserted it meanwhile: what was asked for is there
        result = 0;
    if (result < 0 && aggregate->error == 0) {
        aggregate->error = result == -ENOENT ? -ENOENT : result;
        aggregate->message = result == -ENOENT ? "no such module" : insertFailure(module, result);
        logger("loader")->warn("Could not load '{}' for '{}': {}", module, request,
                               std::strerror(-result));
    }
}

Outcome Manager::checkUnloadable(const std::string &module) {
    switch (backend_.state(module)) {
        case ModuleState::Builtin:
            return {-EOPNOTSUPP, "module is built into the kernel", {}};
        case ModuleState::Absent:
            return {-ESRCH, "module is not loaded", {}};
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

void Manager::unload(const std::string &name, Done done) {
    if (const char *why = whyInvalidRequestName(name)) {
        done({-EINVAL, std::string("invalid module name: ") + why, {}});
        return;
    }
    const std::string module = normalizeModuleName(name);
    Outcome refusal = checkUnloadable(module);
    if (refusal.error < 0) {
        done(std::move(refusal));
        return;
    }
    pool_.submit([this, module, done = std::move(done)](ModuleBackend &worker) mutable {
        const int result = worker.remove(module);
        return [this, module, result, done = std::move(done)]() {
            if (result == 0) {
                registry_.forget(module);
                logger("loader")->info("Removed '{}' on request", module);
                if (listener_ != nullptr)
                    listener_->moduleUnloaded(module, "request");
                done({});
            } else if (result == -EAGAIN || result == -EBUSY) {
                // The kernel settles the race with a user that appeared after our check.
                done({-EBUSY, "module is in use", {}});
            } else if (result == -ENOENT) {
                done({-ESRCH, "module is not loaded", {}});
            } else {
                done({result,
                      std::string("could not remove the module: ") + std::strerror(-result),
                      {}});
            }
        };
    });
}

int Manager::list(std::vector<ModuleView> *modules) {
    std::vector<LoadedModule> loaded;
    const int r = kernel_.readLoaded(&loaded);
    if (r < 0)
        return r;
    std::vector<std::string> names;
    for (const LoadedModule &module : loaded)
        names.push_back(module.name);
    registry_.retainOnly(names);

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
