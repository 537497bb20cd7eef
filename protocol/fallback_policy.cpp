// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fallback_policy.h"

#include <fnmatch.h>

namespace lkmd::fallback {

std::string serialize(const Rules &rules) {
    std::string text(kHeader);
    text += '\n';
    for (const std::string &glob : rules.deny)
        text += "deny " + glob + "\n";
    for (const std::string &glob : rules.allow)
        text += "allow " + glob + "\n";
    return text;
}

Verdict judge(std::string_view text, const char *name) {
    const std::size_t newline = text.find('\n');
    if (text.substr(0, newline) != kHeader)
        return Verdict::Refuse;
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    bool allowList = false;
    bool allowed = false;
    std::string glob;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        const std::size_t space = line.find(' ');
        if (space == std::string_view::npos)
            return Verdict::Refuse;
        const std::string_view kind = line.substr(0, space);
        glob.assign(line.substr(space + 1));
        const bool matches = fnmatch(glob.c_str(), name, 0) == 0;
        if (kind == "deny") {
            if (matches)
                return Verdict::Refuse;
        } else if (kind == "allow") {
            allowList = true;
            allowed = allowed || matches;
        } else {
            return Verdict::Refuse;
        }
    }
    return allowList && !allowed ? Verdict::Refuse : Verdict::Pass;
}

}  // namespace lkmd::fallback
