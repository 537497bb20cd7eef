// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <charconv>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace lkmd {

// The line format of lkmd's own files (the module registry in /run, the load history in
// /var/lib): a name, then tab-separated key=value fields, with tab, newline, CR and '%' escaped
// as %XX. The files are read as root and trusted in nothing: readers validate every field.

std::string escapeField(std::string_view text);
// False on a malformed escape.
bool unescapeField(std::string_view text, std::string *out);

// Splits "NAME\tkey=value\t..." into the (still escaped) name and fields. False when an item is
// not key=value or a key comes twice.
bool splitRecordLine(std::string_view line, std::string_view *name,
                     std::map<std::string_view, std::string_view> *fields);

// A file of such lines under a first line equal to header: each line goes to take, which
// says whether it kept it; *skipped counts the others. -EINVAL when the header differs.
int readRecordLines(std::string_view text, std::string_view header,
                    const std::function<bool(std::string_view line)> &take, std::size_t *skipped);

template <typename Number>
bool parseNumber(std::string_view text, Number *value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

}  // namespace lkmd
