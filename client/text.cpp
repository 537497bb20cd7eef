// SPDX-License-Identifier: LGPL-2.1-or-later
#include "text.h"

#include <time.h>

#include <array>
#include <string>
#include <utility>

namespace lkmd::client {
namespace {

constexpr std::uint64_t kUsecPerSec = 1000000;

bool isContinuationByte(unsigned char byte) {
    return (byte & 0xc0) == 0x80;
}

// Length of the well-formed UTF-8 sequence starting at text[0] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 if it is not one.
std::size_t utf8SequenceLength(std::string_view text) {
    const auto lead = static_cast<unsigned char>(text[0]);
    std::size_t length;
    unsigned char secondMin = 0x80;
    unsigned char secondMax = 0xbf;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        if (lead == 0xe0)
            secondMin = 0xa0;
        else if (lead == 0xed)
            secondMax = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        if (lead == 0xf0)
            secondMin = 0x90;
        else if (lead == 0xf4)
            secondMax = 0x8f;
    } else {
        return 0;
    }
    if (text.size() < length)
        return 0;
    const auto second = static_cast<unsigned char>(text[1]);
    if (second < secondMin || second > secondMax)
        return 0;
    for (std::size_t i = 2; i < length; i++)
        if (!isContinuationByte(static_cast<unsigned char>(text[i])))
            return 0;
    return length;
}

// U+0080..U+009F are encoded as C2 80..C2 9F; some terminals act on them like ESC sequences.
bool isC1Control(std::string_view sequence) {
    return sequence.size() == 2 && static_cast<unsigned char>(sequence[0]) == 0xc2 &&
           static_cast<unsigned char>(sequence[1]) <= 0x9f;
}

void appendHexEscape(std::string &out, unsigned char byte) {
    static constexpr char kDigits[] = "0123456789abcdef";
    out += "\\x";
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xf];
}

enum class Zone { Local, Utc };

bool brokenDownTime(std::uint64_t realtimeUsec, Zone zone, struct tm &tm) {
    const auto seconds = static_cast<time_t>(realtimeUsec / kUsecPerSec);
    return (zone == Zone::Utc ? gmtime_r(&seconds, &tm) : localtime_r(&seconds, &tm)) != nullptr;
}

}  // namespace

std::string escapeForTerminal(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte == '\\') {
            out += "\\\\";
            i++;
            continue;
        }
        if (byte < 0x20 || byte == 0x7f) {
            appendHexEscape(out, byte);
            i++;
            continue;
        }
        const std::size_t length = utf8SequenceLength(text.substr(i));
        if (length == 0) {
            appendHexEscape(out, byte);
            i++;
            continue;
        }
        const std::string_view sequence = text.substr(i, length);
        if (isC1Control(sequence)) {
            for (char c : sequence)
                appendHexEscape(out, static_cast<unsigned char>(c));
        } else {
            out += sequence;
        }
        i += length;
    }
    return out;
}

std::string quoteEscaped(std::string_view text) {
    return "'" + escapeForTerminal(text) + "'";
}

std::size_t displayWidth(std::string_view text) {
    std::size_t width = 0;
    for (char c : text)
        if (!isContinuationByte(static_cast<unsigned char>(c)))
            width++;
    return width;
}

std::string formatLocalTime(std::uint64_t realtimeUsec) {
    struct tm tm = {};
    if (realtimeUsec == 0 || !brokenDownTime(realtimeUsec, Zone::Local, tm))
        return "-";
    std::array<char, 64> buffer;
    const std::size_t length = strftime(buffer.data(), buffer.size(), "%Y-%m-%d %H:%M:%S", &tm);
    return length == 0 ? "-" : std::string(buffer.data(), length);
}

std::string formatIso8601Utc(std::uint64_t realtimeUsec) {
    struct tm tm = {};
    if (realtimeUsec == 0 || !brokenDownTime(realtimeUsec, Zone::Utc, tm))
        return {};
    std::array<char, 64> buffer;
    const std::size_t length = strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buffer.data(), length);
}

std::string formatDuration(std::uint64_t usec) {
    struct Unit {
        std::uint64_t seconds;
        const char *suffix;
    };
    static constexpr std::array<Unit, 4> kUnits = {Unit{86400, "d"}, Unit{3600, "h"},
                                                   Unit{60, "min"}, Unit{1, "s"}};

    const std::uint64_t seconds = usec / kUsecPerSec + (usec % kUsecPerSec != 0 ? 1 : 0);
    for (std::size_t i = 0; i < kUnits.size(); i++) {
        if (seconds < kUnits[i].seconds)
            continue;
        std::string text = std::to_string(seconds / kUnits[i].seconds) + kUnits[i].suffix;
        if (i + 1 < kUnits.size()) {
            const std::uint64_t rest = seconds % kUnits[i].seconds / kUnits[i + 1].seconds;
            if (rest != 0)
                text += " " + std::to_string(rest) + kUnits[i + 1].suffix;
        }
        return text;
    }
    return "0s";
}

std::string formatBytes(std::uint64_t bytes) {
    static constexpr std::array<std::pair<const char *, std::uint64_t>, 4> kUnits = {{
        {"T", 1ULL << 40},
        {"G", 1ULL << 30},
        {"M", 1ULL << 20},
        {"K", 1ULL << 10},
    }};
    for (const auto &[suffix, factor] : kUnits) {
        if (bytes < factor)
            continue;
        return std::to_string(bytes / factor) + "." + std::to_string(bytes % factor * 10 / factor) +
               suffix;
    }
    return std::to_string(bytes) + "B";
}

std::string joinedEscaped(const std::vector<std::string> &names) {
    std::string text;
    for (const std::string &name : names)
        text += (text.empty() ? "" : ", ") + escapeForTerminal(name);
    return text;
}

}  // namespace lkmd::client
