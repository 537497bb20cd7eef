// SPDX-License-Identifier: LGPL-2.1-or-later
#include "timespan.h"

#include <cctype>

namespace lkmd {
namespace {

struct Unit {
    std::string_view name;
    std::uint64_t usec;
};

// Longest names first, so that "ms" is not read as "m" followed by junk.
constexpr Unit kUnits[] = {
    {"seconds", 1'000'000},
    {"second", 1'000'000},
    {"minutes", 60'000'000},
    {"minute", 60'000'000},
    {"months", 2'629'800'000'000},
    {"month", 2'629'800'000'000},
    {"hours", 3'600'000'000},
    {"hour", 3'600'000'000},
    {"weeks", 604'800'000'000},
    {"week", 604'800'000'000},
    {"years", 31'557'600'000'000},
    {"year", 31'557'600'000'000},
    {"days", 86'400'000'000},
    {"day", 86'400'000'000},
    {"msec", 1'000},
    {"usec", 1},
    {"sec", 1'000'000},
    {"min", 60'000'000},
    {"hr", 3'600'000'000},
    {"ms", 1'000},
    {"us", 1},
    {"\xc2\xb5s", 1},
    {"s", 1'000'000},
    {"m", 60'000'000},
    {"h", 3'600'000'000},
    {"d", 86'400'000'000},
    {"w", 604'800'000'000},
    {"M", 2'629'800'000'000},
    {"y", 31'557'600'000'000},
};

bool isSpace(char c) {
    return c == ' ' || c == '\t';
}

}  // namespace

bool parseTimespan(std::string_view text, std::uint64_t *usec) {
    while (!text.empty() && isSpace(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && isSpace(text.back()))
        text.remove_suffix(1);
    if (text == "infinity" || text == "never") {
        *usec = kNever;
        return true;
    }
    if (text.empty())
        return false;
    std::uint64_t total = 0;
    bool first = true;
    while (!text.empty()) {
        std::uint64_t whole = 0;
        std::size_t i = 0;
        for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
            if (whole > (UINT64_MAX - 9) / 10)
                return false;
            whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
        }
        std::uint64_t fraction = 0;
        std::uint64_t fractionScale = 1;
        if (i < text.size() && text[i] == '.') {
            ++i;
            for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i)
                if (fractionScale < 1'000'000'000) {
                    fraction = fraction * 10 + static_cast<std::uint64_t>(text[i] - '0');
                    fractionScale *= 10;
                }
        }
        if (i == 0 || (i == 1 && text[0] == '.'))
            return false;
        text.remove_prefix(i);
        while (!text.empty() && isSpace(text.front()))
            text.remove_prefix(1);
        std::uint64_t scale = 1'000'000;  // a bare number is seconds
        bool named = false;
        for (const Unit &unit : kUnits)
            if (text.starts_with(unit.name)) {
                const std::string_view rest = text.substr(unit.name.size());
                if (!rest.empty() && std::isalpha(static_cast<unsigned char>(rest.front())))
                    continue;  // "mins" is not "min" + "s"
                scale = unit.usec;
                text.remove_prefix(unit.name.size());
                named = true;
                break;
            }
        if (!named && !(first && text.empty()))
            return false;  // only a lone number may go without a unit
        if (whole != 0 && scale > UINT64_MAX / whole)
            return false;
        const std::uint64_t part = whole * scale + fraction * scale / fractionScale;
        if (total > UINT64_MAX - 1 - part)
            return false;
        total += part;
        first = false;
        while (!text.empty() && isSpace(text.front()))
            text.remove_prefix(1);
    }
    *usec = total;
    return true;
}

std::string formatTimespan(std::uint64_t usec) {
    if (usec == kNever)
        return "never";
    if (usec == 0)
        return "0";
    static constexpr Unit kParts[] = {{"d", 86'400'000'000}, {"h", 3'600'000'000},
                                      {"min", 60'000'000},   {"s", 1'000'000},
                                      {"ms", 1'000},         {"us", 1}};
    std::string text;
    for (const Unit &part : kParts) {
        if (usec < part.usec)
            continue;
        text +=
            (text.empty() ? "" : " ") + std::to_string(usec / part.usec) + std::string(part.name);
        usec %= part.usec;
    }
    return text;
}

}  // namespace lkmd
