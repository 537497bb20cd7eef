// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include <systemd/sd-event.h>

#include "config.h"
#include "manager.h"
#include "sd_ptr.h"

namespace lkmd {

// What lkmd tells about a module's fate.
struct AutocleanStatus {
    std::uint64_t idleSinceUsec = 0;  // CLOCK_REALTIME; 0: not idle or not tracked
    std::uint64_t unloadAtUsec = 0;   // CLOCK_REALTIME; 0: not going
    std::string keptBecause;          // empty when it is idle and will go
};

// Everything a sweep looks at for one module.
struct IdleFacts {
    const ModuleRecord *record = nullptr;  // nullptr: lkmd did not load it
    const LoadedModule *loaded = nullptr;  // nullptr: not in /proc/modules
    const ModuleBindings *bindings = nullptr;
    std::string linkKind;  // a link kind this module provides that has a live link
    // Hotplug and coldplug loads: the device it was loaded for, while that device exists.
    std::string presentDevice;
};

// Why a module must stay, or empty when it is idle. Pure: the rules of KERNEL-FACTS 9.
std::string whyKept(const AutocleanSettings &settings, const std::string &module,
                    const IdleFacts &facts);

// kerneld's idle sweep, done safely: only what lkmd loaded on demand, only when nothing uses it,
// only after it was seen idle at two looks and for its whole timeout. The timer runs only while
// there is a candidate; with none, lkmd makes no wakeups at all.
class Autoclean final : public ManagerListener {
public:
    using Clock = std::function<std::uint64_t()>;
    // The link kinds with live links ("dummy", "bridge"): injected so tests need no netlink.
    using LinkKindReader = std::function<std::set<std::string>()>;
    // The modules that provide a link kind ("rtnl-link-<kind>").
    using KindResolver = std::function<std::vector<std::string>(const std::string &kind)>;

    Autoclean(sd_event *event, Manager &manager, const KernelState &kernel,
              AutocleanSettings settings, Clock monotonic, Clock realtime, LinkKindReader linkKinds,
              KindResolver kindResolver);
    ~Autoclean() override;

    void setSettings(AutocleanSettings settings);
    // Something changed what may be cleaned (a pin, a setting): recompute the timer.
    void refresh() { arm(); }
    void sweep();
    AutocleanStatus status(const std::string &module) const;
    bool armed() const { return timer_ != nullptr; }
    // How often the armed timer sweeps (kNever when it is not armed).
    std::uint64_t periodUsec() const { return timer_ ? period_ : kNever; }

    // Whether lkmd hears of devices going away (a uevent monitor runs). Then a module that only
    // devices keep (bound, or the device it was loaded for) is not swept for again until a
    // device goes or unbinds (deviceGone), as one that only other modules hold is not until lkmd
    // unloads one: an lkmd whose candidates all serve devices sleeps. A slow backstop sweep
    // catches what no event announces (a holder removed with rmmod).
    void setDeviceEvents(bool available);
    void deviceGone();

    void moduleLoaded(const std::string &module, Origin origin) override;
    void moduleUnloaded(const std::string &module, const char *reason) override;

private:
    struct Track {
        std::uint64_t idleSince = 0;  // CLOCK_MONOTONIC of the first idle look
        unsigned idleLooks = 0;
        std::uint64_t timeout = 0;
        std::string keptBecause;
        bool unloading = false;
        // What can end the reason it was kept at the last look; Poll: only looking again can tell.
        enum class Wait { Poll, ModuleChange, DeviceChange } waitsFor = Wait::Poll;
    };

    void arm();
    Track::Wait whatEndsTheWait(const std::string &module, const IdleFacts &facts) const;
    static int onTimer(sd_event_source *, uint64_t, void *userdata);

    sd_event *event_;
    Manager &manager_;
    const KernelState &kernel_;
    AutocleanSettings settings_;
    Clock monotonic_;
    Clock realtime_;
    LinkKindReader linkKinds_;
    KindResolver kindResolver_;
    std::map<std::string, Track> tracks_;
    bool deviceEvents_ = false;
    std::uint64_t period_ = kNever;
    EventSourcePtr timer_;
};

}  // namespace lkmd
