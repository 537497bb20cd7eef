// SPDX-License-Identifier: LGPL-2.1-or-later
#include "property_map.h"

namespace lkmd::client {

void assignString(const PropertyMap &properties, std::string_view key, std::string &target) {
    const auto it = properties.find(key);
    if (it == properties.end())
        return;
    if (const auto *text = std::get_if<std::string>(&it->second))
        target = *text;
}

void assignStrings(const PropertyMap &properties, std::string_view key,
                   std::vector<std::string> &target) {
    const auto it = properties.find(key);
    if (it == properties.end())
        return;
    if (const auto *list = std::get_if<std::vector<std::string>>(&it->second))
        target = *list;
}

void assignBool(const PropertyMap &properties, std::string_view key, bool &target) {
    const auto it = properties.find(key);
    if (it == properties.end())
        return;
    if (const auto *flag = std::get_if<bool>(&it->second))
        target = *flag;
}

void assignCounts(const PropertyMap &properties, std::string_view key, Counts &target) {
    const auto it = properties.find(key);
    if (it == properties.end())
        return;
    if (const auto *counts = std::get_if<Counts>(&it->second))
        target = *counts;
}

}  // namespace lkmd::client
