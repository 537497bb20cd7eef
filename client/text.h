// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lkmd::client {

// Makes text from the command line or the bus safe to print on a terminal: control characters,
// C1 controls, invalid UTF-8 and the backslash itself become C-style \xNN (\\ for the backslash),
// so that a hostile name cannot move the cursor or rewrite what the user sees.
std::string escapeForTerminal(std::string_view text);

// Names from the bus, escaped as above and joined by ", ".
std::string joinedEscaped(const std::vector<std::string> &names);

// escapeForTerminal() in single quotes, the way messages show names the user gave.
std::string quoteEscaped(std::string_view text);

// Columns a string occupies, counted in UTF-8 code points. Wide (CJK) characters count as one; the
// names lkmd reports are ASCII in practice.
std::size_t displayWidth(std::string_view text);

// "YYYY-MM-DD HH:MM:SS" in the local time zone (TZ), or "-" for 0 (unknown).
std::string formatLocalTime(std::uint64_t realtimeUsec);

// ISO 8601 in UTC, "YYYY-MM-DDTHH:MM:SSZ"; empty for 0 (unknown).
std::string formatIso8601Utc(std::uint64_t realtimeUsec);

// A span of time in its two largest units, as systemd prints them: "42s", "4min 10s", "1h 5min",
// "2d 3h". Rounded up to whole seconds, so that a deadline still ahead never reads "0s".
std::string formatDuration(std::uint64_t usec);

// Bytes as systemd prints them, in powers of 1024 with one decimal: "512B", "160.0K", "1.5M".
std::string formatBytes(std::uint64_t bytes);

}  // namespace lkmd::client
