// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "property_map.h"
#include "requester_info.h"

namespace lkmd::client {

// A module record of ListModules or GetModule (keys documented in org.lkmd1.Manager.xml).
struct ModuleInfo {
    std::string name;
    std::string origin;  // bus, kernel, hotplug, coldplug or external
    std::string trigger;
    std::string device;     // hotplug and coldplug: the device path, else empty
    std::string subsystem;  // hotplug and coldplug: the device's subsystem
    std::string neededAs;   // requested, dependency or soft dependency
    std::string neededBy;   // the module that needed it, empty when requested
    RequesterInfo requester;
    std::uint64_t loadedAtUsec = 0;  // CLOCK_REALTIME, 0 when unknown
    std::int32_t refCount = -1;      // -1 when unknown or the module cannot be unloaded
    std::uint64_t size = 0;
    std::string state;
    std::vector<std::string> holders;
    std::vector<std::string> drivers;  // GetModule only
    std::vector<std::string> devices;  // GetModule only

    // Autoclean (issue 5). A daemon without autoclean sends none of these: the defaults then say
    // "not a candidate, not pinned, not idle", which is what such a daemon does.
    bool autoclean = false;           // lkmd will unload it once it has been idle long enough
    bool pinned = false;              // SetModulePinned: never unloaded for being idle
    std::uint64_t idleSinceUsec = 0;  // CLOCK_REALTIME, 0 when not idle or not tracked
    std::uint64_t unloadAtUsec = 0;   // CLOCK_REALTIME when it goes if it stays idle, 0 for never
    std::string keptBecause;          // why it is not going, empty when it is idle and will go
};

// Unknown keys are ignored and missing or mistyped keys keep their defaults.
ModuleInfo moduleInfoFromProperties(const PropertyMap &properties);

bool isLoadedByLkmd(const ModuleInfo &module);

}  // namespace lkmd::client
