// SPDX-License-Identifier: LGPL-2.1-or-later
#include "unloader.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include "keep_reason.h"
#include "log.h"
#include "provenance_log.h"
#include "request_name.h"

namespace lkmd {

Unloader::Unloader(ModuleBackend &backend, LoadCoordinator &coordinator, JobRunner &runner,
                   ModuleRegistry &registry, const UseProbe &probe, ModuleEvents &events,
                   Metrics *metrics)
    : backend_(backend),
      coordinator_(coordinator),
      runner_(runner),
      registry_(registry),
      probe_(probe),
      events_(events),
      metrics_(metrics) {}

void Unloader::unload(const std::string &name, Done done, Requester caller) {
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
    start(module, 0, {}, Reason{false, 0, std::move(caller)}, std::move(done));
}

void Unloader::unloadIdle(const std::string &module, std::uint64_t identity, std::string device,
                          std::uint64_t idleSeconds, Done done) {
    start(module, identity, std::move(device), Reason{true, idleSeconds, {}}, std::move(done));
}

void Unloader::start(const std::string &module, std::uint64_t identity, std::string device,
                     Reason reason, Done done) {
    if (!coordinator_.tryBeginRemoval(module)) {
        done({-EBUSY,
              coordinator_.removing(module) ? "module is being unloaded" : "module is being loaded",
              {}});
        return;
    }
    runner_.submit(
        [this, module, identity, device = std::move(device), reason = std::move(reason),
         done = std::move(done)](ModuleBackend &worker) mutable -> JobRunner::Completion {
            Removal removal = lookAndRemove(module, identity, device, reason.idle, worker);
            return [this, module, reason = std::move(reason), removal = std::move(removal),
                    done = std::move(done)] {
                finish(module, reason, removal.result, removal.refusal, done);
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

void Unloader::finish(const std::string &module, const Reason &reason, int result,
                      const std::string &refusal, const Done &done) {
    if (result == 0) {
        const ModuleRecord *record = registry_.find(module);
        logRemoval(module, reason, record);
    }
    // Before the removal ends: a load waiting for it records the module anew.
    if (result == 0 || result == -ESTALE)
        registry_.forget(module);
    coordinator_.endRemoval(module);
    if (result == 0) {
        if (metrics_ != nullptr)
            metrics_->countUnload(reason.idle ? "idle" : "request");
        events_.moduleUnloaded(module, reason.idle ? "idle" : "request");
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

// One journal entry per unload: an idle module with who caused its load, a caller's unload with
// the caller.
void Unloader::logRemoval(const std::string &module, const Reason &reason,
                          const ModuleRecord *record) const {
    std::vector<LogField> fields;
    if (reason.idle && record != nullptr)
        fields = moduleFields(module, *record);
    else
        fields = {{"MODULE", module}};
    if (!reason.idle)
        for (LogField &field : requesterFields(reason.caller))
            fields.push_back(std::move(field));
    fields.emplace_back("MESSAGE_ID", message_id::kModuleUnloaded);
    fields.emplace_back("REASON", reason.idle ? "idle" : "request");
    const LogFields scope(std::move(fields));
    if (reason.idle)
        logger("autoclean")->info("Removed '{}' after {} s idle", module, reason.idleSeconds);
    else
        logger("loader")->info("Removed '{}' on request of {}", module, reason.caller.describe());
}

}  // namespace lkmd
