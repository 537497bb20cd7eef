// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace lkmd::client {

// One a{sv} value as read off the bus. Integers are widened so that a daemon may change a field's
// width without breaking the client; types the client does not know are not stored at all.
using Counts = std::map<std::string, std::uint64_t, std::less<>>;  // a{st}
using PropertyValue = std::variant<std::string, std::int64_t, std::uint64_t, bool, double,
                                   std::vector<std::string>, Counts>;
using PropertyMap = std::map<std::string, PropertyValue, std::less<>>;

// Copy one key of a record into a field. A missing or mistyped key leaves the field as it was, so
// that old clients keep working against newer daemons.
void assignString(const PropertyMap &properties, std::string_view key, std::string &target);
void assignStrings(const PropertyMap &properties, std::string_view key,
                   std::vector<std::string> &target);
void assignBool(const PropertyMap &properties, std::string_view key, bool &target);
void assignCounts(const PropertyMap &properties, std::string_view key, Counts &target);

template <typename Integer>
std::optional<Integer> integerProperty(const PropertyMap &properties, std::string_view key) {
    const auto it = properties.find(key);
    if (it == properties.end())
        return std::nullopt;
    // A value that does not fit counts as missing rather than wrapping around.
    if (const auto *number = std::get_if<std::int64_t>(&it->second);
        number && std::in_range<Integer>(*number))
        return static_cast<Integer>(*number);
    if (const auto *number = std::get_if<std::uint64_t>(&it->second);
        number && std::in_range<Integer>(*number))
        return static_cast<Integer>(*number);
    return std::nullopt;
}

template <typename Integer>
void assignInteger(const PropertyMap &properties, std::string_view key, Integer &target) {
    if (const auto number = integerProperty<Integer>(properties, key))
        target = *number;
}

}  // namespace lkmd::client
