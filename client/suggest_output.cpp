// SPDX-License-Identifier: LGPL-2.1-or-later
#include "suggest_output.h"

#include "output.h"
#include "request_name.h"
#include "text.h"

namespace lkmd::client {
namespace {

// What the comment above an Allow= line says of where it comes from.
std::string provenance(const SuggestionInfo &s) {
    if (s.source == "loaded")
        return "loaded now, " + escapeForTerminal(s.loadedAs.empty() ? "unknown" : s.loadedAs);
    std::string text = "served " + std::to_string(s.count) + (s.count == 1 ? " time" : " times");
    if (!s.origin.empty())
        text += " (" + escapeForTerminal(s.origin) + ")";
    if (s.lastUsec != 0)
        text += ", last " + formatIso8601Utc(s.lastUsec);
    if (!s.modules.empty())
        text += ", modules " + joinedEscaped(s.modules);
    if (!s.requester.empty())
        text += ", by " + escapeForTerminal(s.requester);
    return text;
}

}  // namespace

SuggestionInfo suggestionFromProperties(const PropertyMap &properties) {
    SuggestionInfo s;
    assignString(properties, "Name", s.name);
    assignString(properties, "Source", s.source);
    assignString(properties, "Origin", s.origin);
    assignStrings(properties, "Modules", s.modules);
    assignString(properties, "Requester", s.requester);
    assignInteger(properties, "Count", s.count);
    assignInteger(properties, "FirstUsec", s.firstUsec);
    assignInteger(properties, "LastUsec", s.lastUsec);
    assignString(properties, "RefusedBy", s.refusedBy);
    assignString(properties, "LoadedAs", s.loadedAs);
    return s;
}

std::string allowGlobFor(std::string_view name) {
    // lkmd checked the name already; checked again here because it becomes configuration.
    if (whyInvalidRequestName(name) != nullptr)
        return {};
    std::string glob;
    for (const char c : name) {
        if (c == '*' || c == '?' || c == '[' || c == '\\')
            glob += '\\';
        glob += c;
    }
    return glob;
}

std::string formatAllowListDropIn(const std::vector<SuggestionInfo> &suggestions,
                                  std::uint64_t nowUsec, std::string_view configDir) {
    std::string out =
        "# An allow-list for lkmd, suggested by 'lkmctl policy suggest' on " +
        formatIso8601Utc(nowUsec) +
        "\n"
        "# from lkmd's load history (kept across reboots) and the modules loaded now.\n"
        "#\n"
        "# Review it, save it as " +
        std::string(configDir) +
        "/lkmd.conf.d/50-allow-list.conf\n"
        "# and run 'lkmctl reload'. In audit mode lkmd still loads what the list misses\n"
        "# and logs a warning that it would refuse it; what is missing then shows up in\n"
        "# lkmctl policy suggest. Once nothing is, set Mode=enforce. Mode= applies to\n"
        "# the [Rule]s too.\n"
        "# Entries the policy refuses anyway are commented out: an allow-list never lifts a\n"
        "# refusal, and a time of learning may have seen an attack.\n"
        "\n"
        "[Policy]\n"
        "Mode=audit\n";
    if (suggestions.empty())
        out += "\n# Nothing to allow yet: lkmd has served no request and no module is loaded.\n";
    for (const SuggestionInfo &s : suggestions) {
        out += "\n# " + escapeForTerminal(s.name) + ": " + provenance(s) + "\n";
        const std::string glob = allowGlobFor(s.name);
        if (glob.empty())
            out += "# not written: not a name lkmd accepts\n";
        else if (!s.refusedBy.empty())
            out +=
                "# refused anyway: " + escapeForTerminal(s.refusedBy) + "\n#Allow=" + glob + "\n";
        else
            out += "Allow=" + glob + "\n";
    }
    return out;
}

nlohmann::ordered_json suggestionsJson(const std::vector<SuggestionInfo> &suggestions) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const SuggestionInfo &s : suggestions)
        list.push_back({{"name", s.name},
                        {"source", s.source},
                        {"origin", s.origin},
                        {"modules", s.modules},
                        {"requester", s.requester},
                        {"count", s.count},
                        {"first", isoTimeJson(s.firstUsec)},
                        {"first_usec", s.firstUsec},
                        {"last", isoTimeJson(s.lastUsec)},
                        {"last_usec", s.lastUsec},
                        {"refused_by", s.refusedBy},
                        {"loaded_as", s.loadedAs}});
    return list;
}

}  // namespace lkmd::client
