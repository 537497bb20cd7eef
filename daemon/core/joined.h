// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <vector>

namespace lkmd {

// "a, b, c": lists in messages for people.
inline std::string joined(const std::vector<std::string> &items, const char *separator = ", ") {
    std::string text;
    for (const std::string &item : items) {
        if (!text.empty())
            text += separator;
        text += item;
    }
    return text;
}

}  // namespace lkmd
