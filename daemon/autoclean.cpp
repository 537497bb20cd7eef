// SPDX-License-Identifier: LGPL-2.1-or-later
#include "autoclean.h"

#include <algorithm>

#include "log.h"

namespace lkmd {
namespace {

// Sweeps come at half the shortest timeout, so a module goes between one and one and a half
// timeouts after it fell idle, and always after two looks.
constexpr std::uint64_t kMinPeriodUsec = 500'000;
constexpr std::uint64_t kMaxPeriodUsec = 60'000'000;
// When every candidate waits for an event: what no event announces is found this late.
constexpr std::uint64_t kBackstopPeriodUsec = 600'000'000;

std::string joined(const std::vector<std::string> &items) {
    std::string text;
    for (const std::string &item : items)
        text += (text.empty() ? "" : ", ") + item;
    return text;
}

}  // namespace

std::string whyKept(const AutocleanSettings &settings, const std::string &module,
                    const IdleFacts &facts) {
    const ModuleRecord *record = facts.record;
    if (record == nullptr)
        return "loaded by someone else";
    if (!record->autoclean)
        return "loaded over D-Bus without autoclean";
    if (record->pinned)
        return "pinned";
    if (settings.keeps(module))
        return "listed in Keep=";
    if (settings.timeoutFor(module, record->trigger) == kNever)
        return "its timeout is never";
    if (facts.loaded == nullptr)
        return "not loaded";
    if (facts.loaded->state != LoadState::Live)
        return std::string("state ") + loadStateName(facts.loaded->state);
    if (!facts.loaded->holders.empty())
        return "held by " + joined(facts.loaded->holders);
    if (facts.loaded->refcnt != 0)
        return facts.loaded->refcnt < 0
                   ? std::string("cannot be unloaded")
                   : "in use (refcnt " + std::to_string(facts.loaded->refcnt) + ")";
    // refcnt 0 does not mean unused: a bound driver serves a live device (KERNEL-FACTS 9).
    if (facts.bindings != nullptr && !facts.bindings->devices.empty())
        return "bound to " + joined(facts.bindings->devices);
    if (!facts.linkKind.empty())
        return "provides live " + facts.linkKind + " links";
    // Not every module binds the device it was loaded for (kvm_amd for the CPU, serio_raw beside
    // psmouse): as long as the device is there, so is the reason it was loaded, as with udev.
    if (!facts.presentDevice.empty())
        return "loaded for " + facts.presentDevice + ", still present";
    return {};
}

Autoclean::Autoclean(sd_event *event, Manager &manager, const KernelState &kernel,
                     AutocleanSettings settings, Clock monotonic, Clock realtime,
                     LinkKindReader linkKinds, KindResolver kindResolver)
    : event_(event),
      manager_(manager),
      kernel_(kernel),
      settings_(std::move(settings)),
      monotonic_(std::move(monotonic)),
      realtime_(std::move(realtime)),
      linkKinds_(std::move(linkKinds)),
      kindResolver_(std::move(kindResolver)) {
    manager_.addListener(this);
}

Autoclean::~Autoclean() {
    manager_.removeListener(this);
}

void Autoclean::setSettings(AutocleanSettings settings) {
    settings_ = std::move(settings);
    arm();
}

void Autoclean::setDeviceEvents(bool available) {
    if (deviceEvents_ == available)
        return;  // a reload that changes nothing must not postpone the next sweep
    deviceEvents_ = available;
    arm();
}

void Autoclean::deviceGone() {
    bool woken = false;
    for (auto &[name, track] : tracks_)
        if (track.waitsFor == Track::Wait::DeviceChange) {
            track.waitsFor = Track::Wait::Poll;
            woken = true;
        }
    // A regular sweep pending looks at everything anyway: re-arming it would postpone it for as
    // long as devices keep changing. Only the backstop is cut short.
    if (woken && (!timer_ || period_ == kBackstopPeriodUsec))
        arm();
}

void Autoclean::moduleLoaded(const std::string &, Origin) {
    if (!timer_)
        arm();
}

void Autoclean::moduleUnloaded(const std::string &module, const char *) {
    tracks_.erase(module);
    // What it held may be free now.
    for (auto &[name, track] : tracks_)
        if (track.waitsFor == Track::Wait::ModuleChange)
            track.waitsFor = Track::Wait::Poll;
    arm();  // the last candidate may be gone: then no more wakeups
}

// With at least one candidate: a timer at half its timeout. With none: nothing at all.
void Autoclean::arm() {
    std::uint64_t period = kNever;
    bool waiting = false;
    for (const auto &[name, record] : manager_.registry().records()) {
        if (!record.autoclean || record.pinned || settings_.keeps(name))
            continue;
        const std::uint64_t timeout = settings_.timeoutFor(name, record.trigger);
        if (timeout == kNever)
            continue;
        auto track = tracks_.find(name);
        const Track::Wait wait =
            track != tracks_.end() ? track->second.waitsFor : Track::Wait::Poll;
        if (wait == Track::Wait::ModuleChange ||
            (wait == Track::Wait::DeviceChange && deviceEvents_)) {
            waiting = true;
            continue;
        }
        period = std::min(period, std::clamp(timeout / 2, kMinPeriodUsec, kMaxPeriodUsec));
    }
    if (period == kNever && waiting)
        period = kBackstopPeriodUsec;
    timer_.reset();
    if (period == kNever)
        return;
    sd_event_source *source = nullptr;
    if (sd_event_add_time_relative(event_, &source, CLOCK_MONOTONIC, period, 0, onTimer, this) <
        0) {
        logger("autoclean")->warn("Could not arm the idle timer, will retry on the next load");
        return;
    }
    timer_.reset(source);
    period_ = period;
}

int Autoclean::onTimer(sd_event_source *, uint64_t, void *userdata) {
    static_cast<Autoclean *>(userdata)->sweep();
    return 0;
}

// Kept by devices alone: a device event ends it. Else kept by holders (and perhaps devices),
// whose references make up its whole refcnt: an unload ends it. Else: poll.
Autoclean::Track::Wait Autoclean::whatEndsTheWait(const std::string &module,
                                                  const IdleFacts &facts) const {
    IdleFacts withoutDevices = facts;
    withoutDevices.bindings = nullptr;
    withoutDevices.presentDevice.clear();
    if (whyKept(settings_, module, withoutDevices).empty())
        return Track::Wait::DeviceChange;
    if (facts.loaded == nullptr || facts.loaded->holders.empty())
        return Track::Wait::Poll;
    LoadedModule unheld = *facts.loaded;
    unheld.refcnt -=
        static_cast<int>(std::min<std::size_t>(unheld.holders.size(), std::max(unheld.refcnt, 0)));
    unheld.holders.clear();
    withoutDevices.loaded = &unheld;
    return whyKept(settings_, module, withoutDevices).empty() ? Track::Wait::ModuleChange
                                                              : Track::Wait::Poll;
}

void Autoclean::sweep() {
    const std::uint64_t now = monotonic_();
    std::vector<LoadedModule> loaded;
    if (kernel_.readLoaded(&loaded) < 0) {
        arm();
        return;
    }
    // Link kinds cost a netlink dump: only when some candidate might provide one.
    std::map<std::string, std::string> kindOfModule;
    bool linksRead = false;

    std::map<std::string, Track> next;
    std::vector<std::string> due;
    for (const auto &[name, record] : manager_.registry().records()) {
        auto it = std::find_if(loaded.begin(), loaded.end(),
                               [&](const LoadedModule &m) { return m.name == name; });
        IdleFacts facts;
        facts.record = &record;
        facts.loaded = it != loaded.end() ? &*it : nullptr;
        const ModuleBindings bindings = kernel_.readBindings(name);
        facts.bindings = &bindings;
        if ((record.origin == Origin::Hotplug || record.origin == Origin::Coldplug) &&
            kernel_.deviceExists(record.device))
            facts.presentDevice = record.device;
        std::string reason = whyKept(settings_, name, facts);
        if (reason.empty()) {
            if (!linksRead) {
                for (const std::string &kind : linkKinds_())
                    for (const std::string &module : kindResolver_(kind))
                        kindOfModule[module] = kind;
                linksRead = true;
            }
            auto kind = kindOfModule.find(name);
            if (kind != kindOfModule.end()) {
                facts.linkKind = kind->second;
                reason = whyKept(settings_, name, facts);
            }
        }
        Track track = tracks_.count(name) ? tracks_[name] : Track{};
        track.timeout = settings_.timeoutFor(name, record.trigger);
        track.keptBecause = reason;
        track.waitsFor = reason.empty() ? Track::Wait::Poll : whatEndsTheWait(name, facts);
        if (!reason.empty() || manager_.isUnloading(name)) {
            track.idleSince = 0;
            track.idleLooks = 0;
        } else {
            if (track.idleLooks++ == 0)
                track.idleSince = now;
            if (track.idleLooks >= 2 && now - track.idleSince >= track.timeout)
                due.push_back(name);
        }
        next[name] = track;
    }
    tracks_ = std::move(next);

    for (const std::string &module : due) {
        tracks_[module].unloading = true;
        const std::uint64_t idleSeconds = (now - tracks_[module].idleSince) / 1'000'000;
        manager_.unload(
            module,
            [this, module, idleSeconds](Outcome outcome) {
                if (outcome.error == 0) {
                    const ModuleLogField field(module);
                    logger("autoclean")->info("Removed '{}' after {} s idle", module, idleSeconds);
                    return;
                }
                // In use at the kernel's instant (EBUSY): start its idle clock over.
                auto it = tracks_.find(module);
                if (it != tracks_.end())
                    it->second = Track{};
                logger("autoclean")->debug("Kept '{}': {}", module, outcome.message);
            },
            "idle");
    }
    arm();
}

AutocleanStatus Autoclean::status(const std::string &module) const {
    AutocleanStatus status;
    const ModuleRecord *record = manager_.registry().find(module);
    auto it = tracks_.find(module);
    if (it == tracks_.end()) {
        IdleFacts facts;
        facts.record = record;
        status.keptBecause = whyKept(settings_, module, facts);
        if (status.keptBecause == "not loaded")
            status.keptBecause = "not yet looked at";
        return status;
    }
    const Track &track = it->second;
    status.keptBecause = track.keptBecause;
    if (track.idleLooks > 0) {
        const std::uint64_t now = monotonic_();
        const std::uint64_t wallNow = realtime_();
        status.idleSinceUsec = wallNow - (now - track.idleSince);
        if (track.timeout != kNever)
            status.unloadAtUsec = status.idleSinceUsec + track.timeout;
    }
    return status;
}

}  // namespace lkmd
