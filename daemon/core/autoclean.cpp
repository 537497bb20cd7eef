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

bool loadedForDevice(const ModuleRecord &record) {
    return record.origin == Origin::Hotplug || record.origin == Origin::Coldplug;
}

}  // namespace

Autoclean::Autoclean(Scheduler &scheduler, JobRunner &runner, ModuleRegistry &registry,
                     Unloader &unloader, const UseProbe &probe, AutocleanSettings settings,
                     Metrics *metrics)
    : scheduler_(scheduler),
      runner_(runner),
      registry_(registry),
      unloader_(unloader),
      probe_(probe),
      settings_(std::move(settings)),
      metrics_(metrics),
      timer_(scheduler.timer([this] { sweep(); })) {}

Autoclean::~Autoclean() = default;

void Autoclean::setSettings(AutocleanSettings settings) {
    settings_ = std::move(settings);
    arm();
}

void Autoclean::setDeviceEvents(bool available) {
    if (deviceEvents_ == available)
        return;
    deviceEvents_ = available;
    arm();
}

void Autoclean::wake(Wait wait) {
    for (auto &[name, track] : tracks_)
        if (track.waitsFor == wait || wait == Wait::Poll)
            track.waitsFor = Wait::Poll;
    // The facts a sweep is gathering may be from before the event: its waits would outlive it.
    if (sweeping_)
        sweepAgain_ = true;
    arm();
}

void Autoclean::deviceGone() {
    wake(Wait::DeviceChange);
}

// Any wait: a module someone else removed may be one lkmd waited on for a device event, whose
// record must go.
void Autoclean::moduleGone() {
    wake(Wait::Poll);
}

void Autoclean::moduleLoaded(const std::string &, Origin) {
    arm();  // a new candidate is looked at within its own period, whatever the timer said
}

void Autoclean::moduleUnloaded(const std::string &module, const std::string &) {
    tracks_.erase(module);
    wake(Wait::ModuleChange);  // what it held may be free now
}

// With at least one candidate: a sweep at half its timeout, or sooner if one is due sooner; an
// armed timer is only ever moved earlier, so that events never postpone a sweep. With none:
// no timer at all.
void Autoclean::arm() {
    std::uint64_t period = kNever;
    std::size_t candidates = 0;
    for (const auto &[name, record] : registry_.records()) {
        if (whyKeptRegardlessOfUse(settings_, name, &record).keeps())
            continue;  // pinned, Keep=, never, or still being loaded (moduleLoaded arms then)
        ++candidates;
        const std::uint64_t timeout = settings_.timeoutFor(name, record.trigger);
        auto track = tracks_.find(name);
        const Wait wait = track != tracks_.end() ? track->second.waitsFor : Wait::Poll;
        // The uevent monitor hears devices and modules go (lkmd's own unloads it hears anyway,
        // but not an admin's rmmod): without it, what waits for an event is polled.
        if (wait != Wait::Poll && deviceEvents_)
            continue;
        period = std::min(period, std::clamp(timeout / 2, kMinPeriodUsec, kMaxPeriodUsec));
    }
    if (metrics_ != nullptr)
        metrics_->setAutocleanCandidates(candidates);
    if (period == kNever) {
        timer_->cancel();
        return;
    }
    const std::uint64_t at = scheduler_.monotonicUsec() + period;
    if (timer_->armed() && timer_->at() <= at)
        return;
    timer_->setAt(at);
    period_ = period;
}

void Autoclean::sweep() {
    if (sweeping_) {
        sweepAgain_ = true;
        return;
    }
    std::vector<ProbeTarget> targets;
    for (const auto &[name, record] : registry_.records())
        if (!record.inserting)
            targets.push_back({name, loadedForDevice(record) ? record.device : std::string()});
    if (targets.empty()) {
        tracks_.clear();
        arm();
        return;
    }
    sweeping_ = true;
    runner_.submit(
        [this, targets = std::move(targets)](ModuleBackend &worker) -> JobRunner::Completion {
            auto facts =
                std::make_shared<std::map<std::string, UseFacts>>(probe_.gather(targets, worker));
            return [this, facts] { applySweep(*facts); };
        });
}

// A module can go only once every one of its uses has ended, so the end of any one use that an
// event announces is worth waiting for. A holder is a module whose reference ends only when it
// is removed, whatever else counts in refcnt (scsi_mod's devices, drm's open files): a module
// going ends the wait. A bound driver or the device it was loaded for: a device going or
// unbinding. Only a module whose sole uses are references from outside the module graph (a
// mount, an open file, a live link) is polled: their end announces itself by no event.
Autoclean::Wait Autoclean::whatEndsTheWait(const UseFacts &facts) {
    const std::vector<KeepReason> uses = usesOf(facts, true);
    auto any = [&uses](auto predicate) { return std::any_of(uses.begin(), uses.end(), predicate); };
    if (any([](const KeepReason &use) { return use.kind == Keep::Held; }))
        return Wait::ModuleChange;
    if (any([](const KeepReason &use) {
            return use.kind == Keep::Bound || use.kind == Keep::DevicePresent;
        }))
        return Wait::DeviceChange;
    return Wait::Poll;  // also when kept by ownership or settings: a change there calls refresh()
}

void Autoclean::applySweep(const std::map<std::string, UseFacts> &facts) {
    sweeping_ = false;
    const std::uint64_t now = scheduler_.monotonicUsec();
    std::map<std::string, Track> next;
    struct Due {
        std::string module;
        std::uint64_t identity;
        std::string device;
        std::uint64_t idleSeconds;
    };
    std::vector<Due> due;
    std::vector<std::string> notOurs;
    for (const auto &[name, record] : registry_.records()) {
        auto fact = facts.find(name);
        if (record.inserting || fact == facts.end()) {
            // Loaded (or being loaded) since the facts were read: looked at next time.
            if (auto track = tracks_.find(name); track != tracks_.end())
                next[name] = track->second;
            continue;
        }
        const UseFacts &use = fact->second;
        // Gone, or removed and loaded again by someone else: not lkmd's any more.
        if (use.identity == 0 || use.identity != record.identity) {
            notOurs.push_back(name);
            continue;
        }
        Track track = tracks_.count(name) ? tracks_[name] : Track{};
        track.timeout = settings_.timeoutFor(name, record.trigger);
        track.keptBecause = whyKept(settings_, name, &record, use);
        track.waitsFor = track.keptBecause.keeps() ? whatEndsTheWait(use) : Wait::Poll;
        if (track.keptBecause.keeps()) {
            track.idleSince = 0;
            track.idleLooks = 0;
        } else {
            if (track.idleLooks++ == 0)
                track.idleSince = now;
            if (track.idleLooks >= 2 && now - track.idleSince >= track.timeout)
                due.push_back({name, record.identity,
                               loadedForDevice(record) ? record.device : std::string(),
                               (now - track.idleSince) / 1'000'000});
        }
        next[name] = std::move(track);
    }
    tracks_ = std::move(next);
    for (const std::string &name : notOurs) {
        logger("autoclean")
            ->info("'{}' was unloaded by someone else; forgetting lkmd's record", name);
        registry_.forget(name);
    }

    for (const Due &module : due) {
        unloader_.unloadIdle(module.module, module.identity, module.device, module.idleSeconds,
                             [this, name = module.module](Outcome outcome) {
                                 if (outcome.error == 0)
                                     return;
                                 // In use at the last look (a user came since the sweep):
                                 // start its clock over.
                                 auto it = tracks_.find(name);
                                 if (it != tracks_.end())
                                     it->second = Track{};
                                 logger("autoclean")->debug("Kept '{}': {}", name, outcome.message);
                                 arm();
                             });
    }
    if (sweepAgain_) {
        sweepAgain_ = false;
        sweep();
        return;
    }
    arm();
}

AutocleanStatus Autoclean::status(const std::string &module) const {
    AutocleanStatus status;
    const ModuleRecord *record = registry_.find(module);
    auto it = tracks_.find(module);
    if (it == tracks_.end()) {
        status.keptBecause = whyKeptRegardlessOfUse(settings_, module, record);
        if (!status.keptBecause.keeps())
            status.keptBecause = {Keep::NotLookedAt, {}};
        return status;
    }
    const Track &track = it->second;
    status.keptBecause = track.keptBecause;
    if (track.idleLooks > 0) {
        const std::uint64_t now = scheduler_.monotonicUsec();
        const std::uint64_t wallNow = scheduler_.realtimeUsec();
        status.idleSinceUsec = wallNow - (now - track.idleSince);
        if (track.timeout != kNever)
            status.unloadAtUsec = status.idleSinceUsec + track.timeout;
    }
    return status;
}

}  // namespace lkmd
