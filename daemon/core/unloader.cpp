// SPDX-License-Identifier: LGPL-2.1-or-later
#include "unloader.h"

#include <cerrno>
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
            const UseFacts facts = probe_.gather({{module, device}}, worker)[module];
            std::string refusal;
            int result = 0;
            if (idle && facts.identity != identity) {
                result = -ESTALE;
                refusal = "module was loaded again by someone else";
            } else if (std::vector<KeepReason> uses = usesOf(facts, idle); !uses.empty()) {
                result = uses.front().kind == Keep::NotLoaded ? -ENOENT : -EBUSY;
                if (result == -EBUSY)
                    refusal = uses.front().refusal();
            } else {
                result = worker.remove(module);
            }
            return [this, module, idle, result, refusal = std::move(refusal),
                    done = std::move(done)] { finish(module, idle, result, refusal, done); };
        });
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
