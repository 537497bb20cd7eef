// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "kernel_state.h"
#include "module_registry.h"

namespace lkmd {

// Why a module must stay. One answer for the unload check, autoclean and lkmctl's "kept
// because"; the first group is about who loaded it and what the configuration says, the second
// about its use, the last about the device it was loaded for.
enum class Keep {
    None,  // idle: it may go
    External,
    NoAutoclean,
    Pinned,
    KeepListed,
    TimeoutNever,
    BeingLoaded,
    NotLoaded,
    NotLive,
    Held,       // other modules depend on it
    InUse,      // references beyond its holders' (a mount, an open socket)
    Permanent,  // the kernel cannot unload it (refcnt "-")
    Bound,      // a driver of it serves a device: refcnt 0 does not mean unused
    LiveLinks,  // it provides a network link kind with live links
    DevicePresent,
    NotLookedAt,
};

struct KeepReason {
    Keep kind = Keep::None;
    std::string detail;  // the holders, the refcnt, the devices, the link kind ...

    bool keeps() const { return kind != Keep::None; }
    // For people: "held by vfat", "bound to 0000:00:03.0", "pinned".
    std::string text() const;
    // For the refusal of an unload: "module is in use by vfat".
    std::string refusal() const;
};

// What the kernel says about a module's use, read by gatherUseFacts (use_facts.h).
// liveLinkKind when the links could not be listed: any module might provide one.
inline constexpr const char *kUnlistedLinks = "?";

struct UseFacts {
    bool loaded = false;  // in /proc/modules
    LoadedModule row;
    std::uint64_t identity = 0;  // KernelState::moduleIdentity
    std::vector<std::string> boundDevices;
    std::string liveLinkKind;   // a link kind it provides that has live links
    std::string presentDevice;  // hotplug/coldplug loads: the device, while it exists
};

// Every reason of use that holds, most telling first; empty when nothing uses the module.
// presentDevice counts only when withDevicePresence (autoclean; a caller's unload may go).
std::vector<KeepReason> usesOf(const UseFacts &facts, bool withDevicePresence);

// The first reason that keeps a module the caller wants to unload, or none.
KeepReason whyInUse(const UseFacts &facts);

// The first reason autoclean keeps a module lkmd recorded (nullptr: not lkmd's), or none.
KeepReason whyKept(const AutocleanSettings &settings, const std::string &module,
                   const ModuleRecord *record, const UseFacts &facts);

// Ownership and settings alone: what keeps it whatever its use.
KeepReason whyKeptRegardlessOfUse(const AutocleanSettings &settings, const std::string &module,
                                  const ModuleRecord *record);

}  // namespace lkmd
