// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace lkmd::client {

// One a{sv} value as read off the bus. Integers are widened so that a daemon may change a field's
// width without breaking the client; types the client does not know are not stored at all.
using PropertyValue =
    std::variant<std::string, std::int64_t, std::uint64_t, bool, double, std::vector<std::string>>;
using PropertyMap = std::map<std::string, PropertyValue, std::less<>>;

// A module record of ListModules or GetModule (keys documented in org.lkmd1.Manager.xml).
struct ModuleInfo {
    std::string name;
    std::string origin;  // bus, kernel, hotplug, coldplug or external
    std::string trigger;
    std::uint64_t loadedAtUsec = 0;  // CLOCK_REALTIME, 0 when unknown
    std::int32_t refCount = -1;      // -1 when unknown or the module cannot be unloaded
    std::uint64_t size = 0;
    std::string state;
    std::vector<std::string> holders;
    std::vector<std::string> drivers;  // GetModule only
    std::vector<std::string> devices;  // GetModule only
};

// Unknown keys are ignored and missing or mistyped keys keep their defaults, so that old clients
// keep working against newer daemons.
ModuleInfo moduleInfoFromProperties(const PropertyMap &properties);

bool isLoadedByLkmd(const ModuleInfo &module);

}  // namespace lkmd::client
