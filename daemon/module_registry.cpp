// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_registry.h"

#include <set>

namespace lkmd {

const char *originName(Origin origin) {
    switch (origin) {
        case Origin::Bus:
            return "bus";
        case Origin::Kernel:
            return "kernel";
        case Origin::Hotplug:
            return "hotplug";
        case Origin::Coldplug:
            return "coldplug";
    }
    return "unknown";
}

void ModuleRegistry::record(const std::string &module, ModuleRecord record) {
    records_[module] = std::move(record);
}

void ModuleRegistry::forget(const std::string &module) {
    records_.erase(module);
}

const ModuleRecord *ModuleRegistry::find(const std::string &module) const {
    auto it = records_.find(module);
    return it == records_.end() ? nullptr : &it->second;
}

void ModuleRegistry::retainOnly(const std::vector<std::string> &loaded) {
    const std::set<std::string> present(loaded.begin(), loaded.end());
    std::erase_if(records_, [&](const auto &entry) { return present.count(entry.first) == 0; });
}

}  // namespace lkmd
