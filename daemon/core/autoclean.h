// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "config.h"
#include "keep_reason.h"
#include "metrics.h"
#include "module_events.h"
#include "module_registry.h"
#include "scheduler.h"
#include "unloader.h"
#include "use_probe.h"

namespace lkmd {

// What lkmd tells about a module's fate.
struct AutocleanStatus {
    std::uint64_t idleSinceUsec = 0;  // CLOCK_REALTIME; 0: not idle or not tracked
    std::uint64_t unloadAtUsec = 0;   // CLOCK_REALTIME; 0: not going
    KeepReason keptBecause;           // none when it is idle and will go
};

// kerneld's idle sweep, done safely: only what lkmd loaded on demand (the very load it recorded),
// only when nothing uses it, only after it was seen idle at two looks and for its whole timeout.
// The timer runs only while there is a candidate; with none, lkmd makes no wakeups at all. The
// facts are read by a job (sysfs walks and a netlink dump stay off the loop), the decisions are
// made on the loop.
class Autoclean final : public ModuleEvents {
public:
    Autoclean(Scheduler &scheduler, JobRunner &runner, ModuleRegistry &registry, Unloader &unloader,
              const UseProbe &probe, AutocleanSettings settings, Metrics *metrics = nullptr);
    ~Autoclean() override;

    void setSettings(AutocleanSettings settings);
    const AutocleanSettings &settings() const { return settings_; }
    // Something changed what may be cleaned (a pin, a setting): look when due.
    void refresh() { arm(); }
    // Reads the facts now (in a job) and acts on them when they come back.
    void sweep();
    AutocleanStatus status(const std::string &module) const;
    bool armed() const { return timer_->armed(); }
    // How long after now the armed timer fires (kNever when it is not armed).
    std::uint64_t periodUsec() const { return timer_->armed() ? period_ : kNever; }
    bool sweeping() const { return sweeping_; }

    // Whether lkmd hears of devices and modules going away (a uevent monitor runs). Then a
    // module held by another is not swept for again until a module goes (moduleGone, or lkmd's
    // own unload), and one bound to a device, or loaded for one still present, not until a
    // device goes or unbinds (deviceGone): an lkmd whose candidates all serve devices sleeps.
    // When the kernel drops uevents, the monitor's rescan calls both.
    void setDeviceEvents(bool available);
    void deviceGone();
    // A module went, whoever removed it (a "remove" uevent of the module subsystem).
    void moduleGone();

    void moduleLoaded(const std::string &module, Origin origin) override;
    void moduleUnloaded(const std::string &module, const std::string &reason) override;

private:
    // What can end the reason a module was kept at the last look; Poll: only looking again can.
    enum class Wait { Poll, ModuleChange, DeviceChange };
    struct Track {
        std::uint64_t idleSince = 0;  // CLOCK_MONOTONIC of the first idle look
        unsigned idleLooks = 0;
        std::uint64_t timeout = 0;
        KeepReason keptBecause;
        Wait waitsFor = Wait::Poll;
    };

    void arm();
    void applySweep(const std::map<std::string, UseFacts> &facts);
    void wake(Wait wait);
    static Wait whatEndsTheWait(const UseFacts &facts);

    Scheduler &scheduler_;
    JobRunner &runner_;
    ModuleRegistry &registry_;
    Unloader &unloader_;
    const UseProbe &probe_;
    AutocleanSettings settings_;
    Metrics *metrics_;
    std::map<std::string, Track> tracks_;
    bool deviceEvents_ = false;
    bool sweeping_ = false;
    bool sweepAgain_ = false;
    std::uint64_t period_ = kNever;
    std::unique_ptr<Timer> timer_;
};

}  // namespace lkmd
