// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_info.h"

namespace lkmd::client {

ModuleInfo moduleInfoFromProperties(const PropertyMap &properties) {
    ModuleInfo module;
    assignString(properties, "Name", module.name);
    assignString(properties, "Origin", module.origin);
    assignString(properties, "Trigger", module.trigger);
    assignString(properties, "Device", module.device);
    assignString(properties, "Subsystem", module.subsystem);
    assignString(properties, "NeededAs", module.neededAs);
    assignString(properties, "NeededBy", module.neededBy);
    module.requester = requesterInfoFromProperties(properties);
    assignInteger(properties, "LoadedAt", module.loadedAtUsec);
    assignInteger(properties, "RefCount", module.refCount);
    assignInteger(properties, "Size", module.size);
    assignString(properties, "State", module.state);
    assignStrings(properties, "Holders", module.holders);
    assignStrings(properties, "Drivers", module.drivers);
    assignStrings(properties, "Devices", module.devices);
    assignBool(properties, "Autoclean", module.autoclean);
    assignBool(properties, "Pinned", module.pinned);
    assignInteger(properties, "IdleSince", module.idleSinceUsec);
    assignInteger(properties, "UnloadAt", module.unloadAtUsec);
    assignString(properties, "KeptBecause", module.keptBecause);
    return module;
}

bool isLoadedByLkmd(const ModuleInfo &module) {
    return !module.origin.empty() && module.origin != "external";
}

}  // namespace lkmd::client
