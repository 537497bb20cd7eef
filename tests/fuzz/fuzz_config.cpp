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

bool includes(const std::vector<std::string> &all, const std::vector<std::string> &part) {
    const std::set<std::string> rules(all.begin(), all.end());
    return std::all_of(part.begin(), part.end(),
                       [&](const std::string &rule) { return rules.count(rule) != 0; });
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
    FUZZ_ASSERT(includes(whole.policy.denyModules, valid.policy.denyModules));
    FUZZ_ASSERT(includes(whole.policy.denyRequests, valid.policy.denyRequests));
    FUZZ_ASSERT(includes(whole.autoclean.keep, valid.autoclean.keep));
    for (std::size_t i = 0; i < whole.policy.denyModules.size() && i < 16; ++i)
        FUZZ_ASSERT(whole.policy.deniesModule(whole.policy.denyModules[i]));
    return 0;
}
