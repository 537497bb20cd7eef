// SPDX-License-Identifier: LGPL-2.1-or-later
#include "record_text.h"

#include <cerrno>

namespace lkmd {

std::string escapeField(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : text) {
        if (c == '\t' || c == '\n' || c == '%' || c == '\r') {
            const auto byte = static_cast<unsigned char>(c);
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        } else {
            out += c;
        }
    }
    return out;
}

bool unescapeField(std::string_view text, std::string *out) {
    out->clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out->push_back(text[i]);
            continue;
        }
        unsigned value = 0;
        if (text.size() - i < 3)
            return false;
        const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
        if (ec != std::errc() || end != text.data() + i + 3)
            return false;
        out->push_back(static_cast<char>(value));
        i += 2;
    }
    return true;
}

bool splitRecordLine(std::string_view line, std::string_view *name,
                     std::map<std::string_view, std::string_view> *fields) {
    const std::size_t tab = line.find('\t');
    *name = line.substr(0, tab);
    std::string_view rest = tab == std::string_view::npos ? std::string_view() : line.substr(tab);
    while (!rest.empty()) {
        rest.remove_prefix(1);  // the tab
        const std::size_t next = rest.find('\t');
        const std::string_view item = rest.substr(0, next);
        rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
        const std::size_t equals = item.find('=');
        if (equals == std::string_view::npos ||
            !fields->emplace(item.substr(0, equals), item.substr(equals + 1)).second)
            return false;
    }
    return true;
}

int readRecordLines(std::string_view text, std::string_view header,
                    const std::function<bool(std::string_view line)> &take, std::size_t *skipped) {
    *skipped = 0;
    const std::size_t newline = text.find('\n');
    if (text.substr(0, newline) != header)
        return -EINVAL;
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        if (!take(line))
            ++*skipped;
    }
    return 0;
}

}  // namespace lkmd
