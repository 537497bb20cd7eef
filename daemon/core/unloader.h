// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "load_coordinator.h"
#include "loader.h"
#include "metrics.h"
#include "module_backend.h"
#include "module_events.h"
#include "module_registry.h"
#include "scheduler.h"
#include "use_probe.h"

namespace lkmd {

// Removes modules: for a caller (UnloadModule) and for autoclean. What uses the module is read
// on the worker right before delete_module(), not when the request came: a user that appeared
// meanwhile and takes no module reference (a new dummy link, a device bound since) still counts.
// What is left is the instant between that look and delete_module() (docs/kernel.md, "Users
// that hold no reference"); the kernel settles users that do hold one (EBUSY).
class Unloader {
public:
    using Done = std::function<void(Outcome)>;

    Unloader(ModuleBackend &backend, LoadCoordinator &coordinator, JobRunner &runner,
             ModuleRegistry &registry, const UseProbe &probe, ModuleEvents &events,
             Metrics *metrics = nullptr);

    // A caller's unload of a module by its name.
    void unload(const std::string &name, Done done, Requester caller = {});
    // Autoclean's: only the very load lkmd recorded (same identity), and not while the device it
    // was loaded for is present.
    void unloadIdle(const std::string &module, std::uint64_t identity, std::string device,
                    std::uint64_t idleSeconds, Done done);

private:
    struct Removal {
        int result = 0;
        std::string refusal;  // why the last look kept the module, if it did
    };
    // Who asked for a removal: a caller, or autoclean after so long.
    struct Reason {
        bool idle = false;
        std::uint64_t idleSeconds = 0;
        Requester caller;
    };

    void start(const std::string &module, std::uint64_t identity, std::string device, Reason reason,
               Done done);
    Removal lookAndRemove(const std::string &module, std::uint64_t identity,
                          const std::string &device, bool idle, ModuleBackend &worker) const;
    void finish(const std::string &module, const Reason &reason, int result,
                const std::string &refusal, const Done &done);
    void logRemoval(const std::string &module, const Reason &reason,
                    const ModuleRecord *record) const;

    ModuleBackend &backend_;
    LoadCoordinator &coordinator_;
    JobRunner &runner_;
    ModuleRegistry &registry_;
    const UseProbe &probe_;
    ModuleEvents &events_;
    Metrics *metrics_;
};

}  // namespace lkmd
