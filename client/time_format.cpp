// SPDX-License-Identifier: LGPL-2.1-or-later
#include "time_format.h"

#include <time.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <utility>

namespace lkmd::client {
namespace {

constexpr std::uint64_t kUsecPerSec = 1000000;
constexpr std::uint64_t kUsecPerMsec = 1000;
constexpr std::uint64_t kUsecPerMinute = 60 * kUsecPerSec;
constexpr std::uint64_t kUsecPerHour = 60 * kUsecPerMinute;
constexpr std::uint64_t kUsecPerDay = 24 * kUsecPerHour;
constexpr std::uint64_t kUsecPerWeek = 7 * kUsecPerDay;
// systemd's average month and year, so that "1 month" means the same here as in systemctl.
constexpr std::uint64_t kUsecPerMonth = 2629800 * kUsecPerSec;
constexpr std::uint64_t kUsecPerYear = 31557600 * kUsecPerSec;

std::string plural(std::uint64_t count, const char *unit) {
    return std::to_string(count) + " " + unit + (count == 1 ? "" : "s");
}

std::string spanText(std::uint64_t d) {
    const auto n = [](std::uint64_t value) { return std::to_string(value); };
    if (d >= kUsecPerYear)
        return plural(d / kUsecPerYear, "year") + " " +
               plural(d % kUsecPerYear / kUsecPerMonth, "month");
    if (d >= kUsecPerMonth)
        return plural(d / kUsecPerMonth, "month") + " " +
               plural(d % kUsecPerMonth / kUsecPerDay, "day");
    if (d >= kUsecPerWeek)
        return plural(d / kUsecPerWeek, "week") + " " +
               plural(d % kUsecPerWeek / kUsecPerDay, "day");
    if (d >= 2 * kUsecPerDay)
        return plural(d / kUsecPerDay, "day");
    if (d >= 25 * kUsecPerHour)
        return "1 day " + n((d - kUsecPerDay) / kUsecPerHour) + "h";
    if (d >= 6 * kUsecPerHour)
        return n(d / kUsecPerHour) + "h";
    if (d >= kUsecPerHour)
        return n(d / kUsecPerHour) + "h " + n(d % kUsecPerHour / kUsecPerMinute) + "min";
    if (d >= 5 * kUsecPerMinute)
        return n(d / kUsecPerMinute) + "min";
    if (d >= kUsecPerMinute)
        return n(d / kUsecPerMinute) + "min " + n(d % kUsecPerMinute / kUsecPerSec) + "s";
    if (d >= kUsecPerSec)
        return n(d / kUsecPerSec) + "s";
    if (d >= kUsecPerMsec)
        return n(d / kUsecPerMsec) + "ms";
    return n(d) + "us";
}

// Reads an unsigned number at the front of text.
bool takeNumber(std::string_view &text, std::uint64_t *value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    if (ec != std::errc() || end == text.data())
        return false;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    return true;
}

void skipSpaces(std::string_view &text) {
    while (!text.empty() && text.front() == ' ')
        text.remove_prefix(1);
}

// "1h 30min", "5min", "90s": a span of time.
bool parseSpan(std::string_view text, std::uint64_t *usec) {
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 12> kUnits = {{
        {"usec", 1},
        {"us", 1},
        {"msec", kUsecPerMsec},
        {"ms", kUsecPerMsec},
        {"min", kUsecPerMinute},
        {"sec", kUsecPerSec},
        {"s", kUsecPerSec},
        {"hour", kUsecPerHour},
        {"h", kUsecPerHour},
        {"day", kUsecPerDay},
        {"d", kUsecPerDay},
        {"w", kUsecPerWeek},
    }};
    std::uint64_t total = 0;
    skipSpaces(text);
    if (text.empty())
        return false;
    while (!text.empty()) {
        std::uint64_t value = 0;
        if (!takeNumber(text, &value))
            return false;
        skipSpaces(text);
        std::uint64_t unit = 0;
        for (const auto &[name, factor] : kUnits)
            if (text.starts_with(name)) {
                unit = factor;
                text.remove_prefix(name.size());
                break;
            }
        if (unit == 0)
            return false;
        total += value * unit;
        skipSpaces(text);
    }
    *usec = total;
    return true;
}

// Local midnight of the day of realtimeUsec, shifted by days.
std::uint64_t localMidnight(std::uint64_t realtimeUsec, int days) {
    const auto seconds = static_cast<time_t>(realtimeUsec / kUsecPerSec);
    struct tm tm = {};
    localtime_r(&seconds, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday += days;
    tm.tm_isdst = -1;
    const time_t midnight = mktime(&tm);
    return midnight < 0 ? 0 : static_cast<std::uint64_t>(midnight) * kUsecPerSec;
}

// "YYYY-MM-DD [HH:MM[:SS]]" or "HH:MM[:SS]" in local time.
bool parseLocal(std::string_view text, std::uint64_t nowUsec, std::uint64_t *usec) {
    const std::string copy(text);
    struct tm tm = {};
    int consumed = 0;
    const auto now = static_cast<time_t>(nowUsec / kUsecPerSec);
    localtime_r(&now, &tm);
    tm.tm_sec = 0;
    bool matched =
        std::sscanf(copy.c_str(), "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) == 6 ||
        (tm.tm_sec = 0, std::sscanf(copy.c_str(), "%4d-%2d-%2d %2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &consumed) == 5);
    if (matched) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
    } else if (std::sscanf(copy.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                           &consumed) == 3) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        matched = true;
    } else {
        localtime_r(&now, &tm);
        tm.tm_sec = 0;
        matched = std::sscanf(copy.c_str(), "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                              &consumed) == 3 ||
                  (tm.tm_sec = 0,
                   std::sscanf(copy.c_str(), "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &consumed) == 2);
    }
    if (!matched || static_cast<std::size_t>(consumed) != copy.size())
        return false;
    tm.tm_isdst = -1;
    const time_t seconds = mktime(&tm);
    if (seconds < 0)
        return false;
    *usec = static_cast<std::uint64_t>(seconds) * kUsecPerSec;
    return true;
}

}  // namespace

std::string formatTimestamp(std::uint64_t realtimeUsec) {
    if (realtimeUsec == 0)
        return "-";
    const auto seconds = static_cast<time_t>(realtimeUsec / kUsecPerSec);
    struct tm tm = {};
    if (localtime_r(&seconds, &tm) == nullptr)
        return "-";
    std::array<char, 64> buffer;
    const std::size_t length =
        strftime(buffer.data(), buffer.size(), "%a %Y-%m-%d %H:%M:%S %Z", &tm);
    return length == 0 ? "-" : std::string(buffer.data(), length);
}

std::string formatRelative(std::uint64_t thenUsec, std::uint64_t nowUsec) {
    if (thenUsec == nowUsec)
        return "now";
    if (thenUsec > nowUsec)
        return "in " + spanText(thenUsec - nowUsec);
    return spanText(nowUsec - thenUsec) + " ago";
}

std::string formatTimestampAndRelative(std::uint64_t realtimeUsec, std::uint64_t nowUsec) {
    if (realtimeUsec == 0)
        return "-";
    return formatTimestamp(realtimeUsec) + "; " + formatRelative(realtimeUsec, nowUsec);
}

std::string formatElapsed(std::uint64_t usec) {
    if (usec < kUsecPerMsec)
        return std::to_string(usec) + "us";
    if (usec < kUsecPerSec)
        return std::to_string(usec / kUsecPerMsec) + "ms";
    const std::uint64_t tenths = usec / (kUsecPerSec / 10);
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "s";
}

bool parseTimeSpec(std::string_view text, std::uint64_t nowUsec, std::uint64_t *usec) {
    std::uint64_t span = 0;
    if (text == "now") {
        *usec = nowUsec;
    } else if (text == "today") {
        *usec = localMidnight(nowUsec, 0);
    } else if (text == "yesterday") {
        *usec = localMidnight(nowUsec, -1);
    } else if (text.starts_with('@')) {
        std::string_view rest = text.substr(1);
        std::uint64_t seconds = 0;
        if (!takeNumber(rest, &seconds) || !rest.empty())
            return false;
        *usec = seconds * kUsecPerSec;
    } else if (text.starts_with('-') && parseSpan(text.substr(1), &span)) {
        *usec = span > nowUsec ? 0 : nowUsec - span;
    } else if (text.ends_with(" ago") && parseSpan(text.substr(0, text.size() - 4), &span)) {
        *usec = span > nowUsec ? 0 : nowUsec - span;
    } else {
        return parseLocal(text, nowUsec, usec);
    }
    return true;
}

}  // namespace lkmd::client
