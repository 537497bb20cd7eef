// SPDX-License-Identifier: LGPL-2.1-or-later
#include "keep_reason.h"

#include "joined.h"

namespace lkmd {

std::string KeepReason::text() const {
    switch (kind) {
        case Keep::None:
            return {};
        case Keep::External:
            return "loaded by someone else";
        case Keep::NoAutoclean:
            return "loaded over D-Bus without autoclean";
        case Keep::Pinned:
            return "pinned";
        case Keep::KeepListed:
            return "listed in Keep=";
        case Keep::TimeoutNever:
            return "its timeout is never";
        case Keep::BeingLoaded:
            return "being loaded";
        case Keep::NotLoaded:
            return "not loaded";
        case Keep::NotLive:
            return "state " + detail;
        case Keep::Held:
            return "held by " + detail;
        case Keep::InUse:
            return "in use (refcnt " + detail + ")";
        case Keep::Permanent:
            return "cannot be unloaded";
        case Keep::Bound:
            return "bound to " + detail;
        case Keep::LiveLinks:
            return detail == kUnlistedLinks ? std::string("network links could not be listed")
                                            : "provides live " + detail + " links";
        case Keep::DevicePresent:
            return "loaded for " + detail + ", still present";
        case Keep::NotLookedAt:
            return "not yet looked at";
    }
    return "unknown";
}

std::string KeepReason::refusal() const {
    switch (kind) {
        case Keep::Held:
            return "module is in use by " + detail;
        case Keep::InUse:
            return "module is in use (refcnt " + detail + ")";
        case Keep::Bound:
            return "module is in use: its driver is bound to " + detail;
        case Keep::LiveLinks:
            return "module is in use: " + text();
        case Keep::Permanent:
            return "module cannot be unloaded (built without unload support or forced in)";
        case Keep::NotLive:
            return "module is " + detail;
        default:
            return "module is in use: " + text();
    }
}

std::vector<KeepReason> usesOf(const UseFacts &facts, bool withDevicePresence) {
    std::vector<KeepReason> uses;
    if (!facts.loaded) {
        uses.push_back({Keep::NotLoaded, {}});
        return uses;
    }
    const LoadedModule &row = facts.row;
    if (row.state != LoadState::Live)
        uses.push_back({Keep::NotLive, loadStateName(row.state)});
    if (!row.holders.empty())
        uses.push_back({Keep::Held, joined(row.holders)});
    if (row.refcnt < 0)
        uses.push_back({Keep::Permanent, {}});
    // Each holder owns one reference; more than that is a user outside the module graph.
    else if (static_cast<std::size_t>(row.refcnt) > row.holders.size())
        uses.push_back({Keep::InUse, std::to_string(row.refcnt)});
    if (!facts.boundDevices.empty())
        uses.push_back({Keep::Bound, joined(facts.boundDevices)});
    if (!facts.liveLinkKind.empty())
        uses.push_back({Keep::LiveLinks, facts.liveLinkKind});
    // Not every module binds the device it was loaded for (kvm_amd for the CPU, serio_raw beside
    // psmouse): as long as the device is there, so is the reason it was loaded, as with udev.
    if (withDevicePresence && !facts.presentDevice.empty())
        uses.push_back({Keep::DevicePresent, facts.presentDevice});
    return uses;
}

KeepReason whyInUse(const UseFacts &facts) {
    std::vector<KeepReason> uses = usesOf(facts, false);
    return uses.empty() ? KeepReason{} : std::move(uses.front());
}

KeepReason whyKeptRegardlessOfUse(const AutocleanSettings &settings, const std::string &module,
                                  const ModuleRecord *record) {
    if (record == nullptr)
        return {Keep::External, {}};
    if (record->inserting)
        return {Keep::BeingLoaded, {}};
    if (!record->autoclean)
        return {Keep::NoAutoclean, {}};
    if (record->pinned)
        return {Keep::Pinned, {}};
    if (settings.keeps(module))
        return {Keep::KeepListed, {}};
    if (settings.timeoutFor(module, record->trigger) == kNever)
        return {Keep::TimeoutNever, {}};
    return {};
}

KeepReason whyKept(const AutocleanSettings &settings, const std::string &module,
                   const ModuleRecord *record, const UseFacts &facts) {
    KeepReason reason = whyKeptRegardlessOfUse(settings, module, record);
    if (reason.keeps())
        return reason;
    std::vector<KeepReason> uses = usesOf(facts, true);
    return uses.empty() ? KeepReason{} : std::move(uses.front());
}

}  // namespace lkmd
