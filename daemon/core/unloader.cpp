// SPDX-License-Identifier: LGPL-2.1-or-later
#include "unloader.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include "keep_reason.h"
#include "log.h"
#include "request_name.h"

namespace lkmd {

Unloader::Unloader(ModuleBackend &backend, LoadCoordinator &coordinator, JobRunner &runner,
                   ModuleRegistry &registry, const UseProbe &probe, ModuleEvents &events)
    : backend_(backend),
      coordinator_(coordinator),
      runner_(runner),
      registry_(registry),
      probe_(probe),
      events_(events) {}

void Unloader::unload(const std::string &name, Done done) {
    if (const char *why = whyInvalidModuleName(name)) {
        done({-EINVAL, std::string("invalid module name: ") + why, {}});
        return;
    }
    const std::string module = normalizeModuleName(name);
    switch (backend_.state(module)) {
        case ModuleState::Builtin:
            done({-EOPNOTSUPP, "module is built into the kernel", {}});
            return;
        case ModuleState::Absent: {
            std::vector<std::string> resolved;
            if (backend_.resolve(module, &resolved) < 0)
                done({-ENOENT, "no such module", {}});
            else
                done({-ESRCH, "module is not loaded", {}});
            return;
        }
        default:
            break;
    }
    start(module, 0, {}, false, std::move(done));
}

void Unloader::unloadIdle(const std::string &module, std::uint64_t identity, std::string device,
                          Done done) {
    start(module, identity, std::move(device), true, std::move(done));
}

void Unloader::start(const std::string &module, std::uint64_t identity, std::string device,
                     bool idle, Done done) {
    if (!coordinator_.tryBeginRemoval(module)) {
        done({-EBUSY,
              coordinator_.removing(module) ? "module is being unloaded" : "module is being loaded",
              {}});
        return;
    }
    runner_.submit(
        [this, module, identity, device = std::move(device), idle,
         done = std::move(done)](ModuleBackend &worker) mutable -> JobRunner::Completion {
            Removal removal = lookAndRemove(module, identity, device, idle, worker);
            return [this, module, idle, removal = std::move(removal), done = std::move(done)] {
                finish(module, idle, removal.result, removal.refusal, done);
            };
        });
}

// On the worker: the last look at the module's users, then delete_module(). What is left of the
// race with users that take no reference is a user that comes in between (docs/kernel.md, "Users
// that hold no reference"); the gap is logged so that it can be measured on a real kernel.
Unloader::Removal Unloader::lookAndRemove(const std::string &module, std::uint64_t identity,
                                          const std::string &device, bool idle,
                                          ModuleBackend &worker) const {
    using Clock = std::chrono::steady_clock;
    const auto us = [](Clock::duration d) {
        return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    };
    const Clock::time_point lookStarted = Clock::now();
    const UseFacts facts = probe_.gather({{module, device}}, worker)[module];
    const Clock::time_point looked = Clock::now();
    if (idle && facts.identity != identity)
        return {-ESTALE, "module was loaded again by someone else"};
    if (std::vector<KeepReason> uses = usesOf(facts, idle); !uses.empty()) {
        if (uses.front().kind == Keep::NotLoaded)
            return {-ENOENT, {}};
        return {-EBUSY, uses.front().refusal()};
    }
    logger("loader")->debug(
        "Removing '{}': looked at its users in {} us, {} us before delete_module()", module,
        us(looked - lookStarted), us(Clock::now() - looked));
    return {worker.remove(module), {}};
}

void Unloader::finish(const std::string &module, bool idle, int result, const std::string &refusal,
                      const Done &done) {
    // Before the removal ends: a load waiting for it records the module anew.
    if (result == 0 || result == -ESTALE)
        registry_.forget(module);
    coordinator_.endRemoval(module);
    if (result == 0) {
        const ModuleLogField field(module);
        // Autoclean tells how long the module was idle; a caller's unload is told here.
        if (!idle)
            logger("loader")->info("Removed '{}' on request", module);
        events_.moduleUnloaded(module, idle ? "idle" : "request");
        done({});
    } else if (result == -ESTALE) {  // the module loaded now is not the one lkmd loaded
        done({-EBUSY, refusal, {}});
    } else if (!refusal.empty()) {
        done({result == -ENOENT ? -ESRCH : -EBUSY, refusal, {}});
    } else if (result == -EAGAIN || result == -EBUSY) {
        // The kernel settles the race with a user that appeared after the look.
        done({-EBUSY, "module is in use", {}});
    } else if (result == -ENOENT) {
        done({-ESRCH, "module is not loaded", {}});
    } else {
        done({result, std::strerror(-result), {}});
    }
}

}  // namespace lkmd
