// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "property_map.h"

namespace lkmd::client {

// A module record of ListModules or GetModule (keys documented in org.lkmd1.Manager.xml).
struct ModuleInfo {
    std::string name;
    std::string origin;  // bus, kernel, hotplug, coldplug or external
    std::string trigger;
    std::string device;              // hotplug and coldplug: the device path, else empty
    std::uint64_t loadedAtUsec = 0;  // CLOCK_REALTIME, 0 when unknown
    std::int32_t refCount = -1;      // -1 when unknown or the module cannot be unloaded
    std::uint64_t size = 0;
    std::string state;
    std::vector<std::string> holders;
    std::vector<std::string> drivers;  // GetModule only
    std::vector<std::string> devices;  // GetModule only
};

// Unknown keys are ignored and missing or mistyped keys keep their defaults.
ModuleInfo moduleInfoFromProperties(const PropertyMap &properties);

bool isLoadedByLkmd(const ModuleInfo &module);

}  // namespace lkmd::client
