// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_info.h"

#include <optional>
#include <string_view>
#include <utility>

namespace lkmd::client {
namespace {

const PropertyValue *find(const PropertyMap &properties, std::string_view key) {
    const auto it = properties.find(key);
    return it == properties.end() ? nullptr : &it->second;
}

void assignString(const PropertyMap &properties, std::string_view key, std::string &target) {
    const PropertyValue *value = find(properties, key);
    if (value == nullptr)
        return;
    if (const auto *text = std::get_if<std::string>(value))
        target = *text;
}

void assignStrings(const PropertyMap &properties, std::string_view key,
                   std::vector<std::string> &target) {
    const PropertyValue *value = find(properties, key);
    if (value == nullptr)
        return;
    if (const auto *list = std::get_if<std::vector<std::string>>(value))
        target = *list;
}

template <typename Integer>
std::optional<Integer> integerValue(const PropertyMap &properties, std::string_view key) {
    const PropertyValue *value = find(properties, key);
    if (value == nullptr)
        return std::nullopt;
    // A value that does not fit counts as missing rather than wrapping around.
    if (const auto *number = std::get_if<std::int64_t>(value);
        number && std::in_range<Integer>(*number))
        return static_cast<Integer>(*number);
    if (const auto *number = std::get_if<std::uint64_t>(value);
        number && std::in_range<Integer>(*number))
        return static_cast<Integer>(*number);
    return std::nullopt;
}

template <typename Integer>
void assignInteger(const PropertyMap &properties, std::string_view key, Integer &target) {
    if (const auto number = integerValue<Integer>(properties, key))
        target = *number;
}

}  // namespace

ModuleInfo moduleInfoFromProperties(const PropertyMap &properties) {
    ModuleInfo module;
    assignString(properties, "Name", module.name);
    assignString(properties, "Origin", module.origin);
    assignString(properties, "Trigger", module.trigger);
    assignInteger(properties, "LoadedAt", module.loadedAtUsec);
    assignInteger(properties, "RefCount", module.refCount);
    assignInteger(properties, "Size", module.size);
    assignString(properties, "State", module.state);
    assignStrings(properties, "Holders", module.holders);
    assignStrings(properties, "Drivers", module.drivers);
    assignStrings(properties, "Devices", module.devices);
    return module;
}

bool isLoadedByLkmd(const ModuleInfo &module) {
    return !module.origin.empty() && module.origin != "external";
}

}  // namespace lkmd::client
