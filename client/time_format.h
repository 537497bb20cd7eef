// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lkmd::client {

// Times as systemctl prints them. realtimeUsec is CLOCK_REALTIME in microseconds; 0 is unknown.

// "Thu 2024-05-02 10:00:00 UTC" in the local time zone (TZ), with its abbreviation; "-" for 0.
std::string formatTimestamp(std::uint64_t realtimeUsec);

// How long ago (or how far ahead) then is from now, as systemd says it: "now", "42s ago",
// "3min 5s ago", "8min ago", "1h 5min ago", "7h ago", "1 day 3h ago", "3 days ago",
// "2 weeks 1 day ago", "3 months 2 days ago", "1 year 2 months ago"; "in 42s" ahead.
std::string formatRelative(std::uint64_t thenUsec, std::uint64_t nowUsec);

// "Thu 2024-05-02 10:00:00 UTC; 3min ago", or "-" for 0.
std::string formatTimestampAndRelative(std::uint64_t realtimeUsec, std::uint64_t nowUsec);

// "12ms", "1.5s", "250us": a request's duration.
std::string formatElapsed(std::uint64_t usec);

// The --since= forms of journalctl that make sense here: "YYYY-MM-DD [HH:MM[:SS]]" and
// "HH:MM[:SS]" (today) in local time, "today", "yesterday", "now", "-5min" and "5min ago"
// (units us, ms, s, min, h, d, w; several may follow each other, "1h 30min ago"), and "@SECONDS"
// since the epoch. False when text is none of these.
bool parseTimeSpec(std::string_view text, std::uint64_t nowUsec, std::uint64_t *usec);

}  // namespace lkmd::client
