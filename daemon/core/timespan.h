// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lkmd {

inline constexpr std::uint64_t kNever = UINT64_MAX;

// systemd's time spans (systemd.time(7)): "90", "1min 30s", "1h30min", "2.5s", "500ms", "3 weeks";
// a bare number is seconds; "infinity" and "never" are kNever. False for anything else, and for
// spans that overflow.
bool parseTimespan(std::string_view text, std::uint64_t *usec);

// The shortest exact form: "90s", "1min 30s", "500ms", "never".
std::string formatTimespan(std::uint64_t usec);

}  // namespace lkmd
