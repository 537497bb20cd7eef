// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmd.conf text. Beyond "no crash": an error never drops a valid rule of the same file. Taking
// out every line reported as an error (and every value of such a line) must leave no [Deny] rule
// that the whole file did not also give: a typo never lifts a denial next to it.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "fuzz_input.h"

namespace {

std::set<std::string> globs(const std::vector<lkmd::Pattern> &patterns) {
    std::set<std::string> out;
    for (const lkmd::Pattern &pattern : patterns)
        out.insert(pattern.glob);
    return out;
}

// Every denial of a config: [Deny] lists, the patterns of refusing [Rule]s, Keep= entries.
std::set<std::string> denials(const lkmd::Config &config) {
    std::set<std::string> out;
    for (const std::string &glob : globs(config.policy.denyModules))
        out.insert("deny-module " + glob);
    for (const std::string &glob : globs(config.policy.denyRequests))
        out.insert("deny-request " + glob);
    for (const lkmd::Rule &rule : config.policy.rules) {
        if (rule.allows)
            continue;
        for (const std::string &glob : globs(rule.modules))
            out.insert("rule-module " + glob);
        for (const std::string &glob : globs(rule.requests))
            out.insert("rule-request " + glob);
    }
    for (const std::string &module : config.autoclean.keep)
        out.insert("keep " + module);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size > 64 * 1024)
        return 0;
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    lkmd::Config whole;
    std::vector<lkmd::ConfigDiagnostic> diagnostics;
    lkmd::parseConfigText(text, "f.conf", &whole, &diagnostics);
    std::set<int> errorLines;
    for (const lkmd::ConfigDiagnostic &diagnostic : diagnostics) {
        if (diagnostic.line > 0)
            errorLines.insert(diagnostic.line);
        (void)lkmd::formatDiagnostic(diagnostic);
    }

    std::string cleaned;
    int number = 0;
    for (std::string_view rest = text; !rest.empty();) {
        ++number;
        const std::size_t newline = rest.find('\n');
        const std::string_view line = rest.substr(0, newline);
        rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
        // An empty line keeps the numbering; a malformed header's keys stay as they were.
        cleaned += errorLines.count(number) != 0 && line.find('[') == std::string_view::npos
                       ? std::string_view()
                       : line;
        cleaned += '\n';
    }
    lkmd::Config valid;
    diagnostics.clear();
    lkmd::parseConfigText(cleaned, "f.conf", &valid, &diagnostics);
    const std::set<std::string> all = denials(whole);
    for (const std::string &denial : denials(valid))
        FUZZ_ASSERT(all.count(denial) != 0);
    return 0;
}
