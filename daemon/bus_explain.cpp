// SPDX-License-Identifier: LGPL-2.1-or-later
// Explain and SuggestAllowList: what the policy makes of a name, and what an allow-list for this
// host would hold. Reads only, open to every caller, as the listings are.
#include <cerrno>
#include <cstring>

#include "allow_suggestion.h"
#include "bus_arguments.h"
#include "bus_records.h"
#include "bus_service.h"
#include "explain.h"

namespace lkmd {
namespace {

// key → aa{sv}, one a{sv} per item, filled by appendItem.
template <typename Item, typename AppendItem>
int appendRecordList(sd_bus_message *m, const char *key, const std::vector<Item> &items,
                     AppendItem appendItem) {
    int r = sd_bus_message_open_container(m, 'e', "sv");
    if (r >= 0)
        r = sd_bus_message_append_basic(m, 's', key);
    if (r >= 0)
        r = sd_bus_message_open_container(m, 'v', "aa{sv}");
    if (r >= 0)
        r = sd_bus_message_open_container(m, 'a', "a{sv}");
    for (const Item &item : items) {
        if (r >= 0)
            r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
            r = appendItem(m, item);
        if (r >= 0)
            r = sd_bus_message_close_container(m);
    }
    for (int i = 0; i < 3 && r >= 0; ++i)
        r = sd_bus_message_close_container(m);
    return r;
}

int appendStep(sd_bus_message *m, const Explanation::Step &step) {
    int r = appendString(m, "Module", step.module);
    if (r >= 0)
        r = appendString(m, "For", step.forModule);
    if (r >= 0)
        r = appendString(m, "Role", step.role);
    if (r >= 0)
        r = appendString(m, "State", step.state);
    if (r >= 0)
        r = appendString(m, "Options", step.options);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "InstallCommand", "b", step.installCommand);
    return r;
}

int appendRule(sd_bus_message *m, const PolicyMatch &match) {
    int r = appendString(m, "Where", match.where);
    if (r >= 0)
        r = appendString(m, "Text", match.text);
    if (r >= 0)
        r = appendString(m, "Reason", match.reason);
    if (r >= 0)
        r = appendString(m, "Mode", match.mode);
    return r;
}

int appendJudgement(sd_bus_message *m, const Explanation::Judgement &judgement) {
    int r = appendString(m, "Requester", judgement.requester);
    if (r >= 0)
        r = appendString(m, "Verdict", judgement.verdict);
    if (r >= 0)
        r = appendString(m, "Because", judgement.because);
    return r;
}

// The a{sv} documented for Explain in org.lkmd1.Manager.xml.
int appendExplanation(sd_bus_message *m, const Explanation &e) {
    int r = sd_bus_message_open_container(m, 'a', "{sv}");
    if (r >= 0)
        r = appendString(m, "Request", e.request);
    if (r >= 0)
        r = appendString(m, "Lookup", e.lookup);
    if (r >= 0)
        r = appendStringList(m, "Modules", e.modules);
    if (r >= 0)
        r = appendStringList(m, "HiddenByBlacklist", e.hiddenByBlacklist);
    if (r >= 0)
        r = appendRecordList(m, "Steps", e.steps, appendStep);
    if (r >= 0)
        r = appendRecordList(m, "Rules", e.rules, appendRule);
    if (r >= 0)
        r = appendRecordList(m, "Judgements", e.judgements, appendJudgement);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "IdleTimeoutUsec", "t", e.idleTimeoutUsec);
    if (r >= 0)
        r = appendString(m, "IdleTimeout", e.idleTimeout);
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    return r;
}

int appendSuggestion(sd_bus_message *m, const AllowSuggestion &s) {
    int r = sd_bus_message_open_container(m, 'a', "{sv}");
    if (r >= 0)
        r = appendString(m, "Name", s.name);
    if (r >= 0)
        r = appendString(m, "Source", s.source);
    if (r >= 0)
        r = appendString(m, "Origin", s.history.origin);
    if (r >= 0)
        r = appendStringList(m, "Modules", s.history.modules);
    if (r >= 0)
        r = appendString(m, "Requester", s.history.who);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "Count", "t", s.history.count);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "FirstUsec", "t", s.history.firstUsec);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "LastUsec", "t", s.history.lastUsec);
    if (r >= 0)
        r = appendString(m, "RefusedBy", s.refusedBy);
    if (r >= 0)
        r = appendString(m, "LoadedAs", s.loadedAs);
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    return r;
}

}  // namespace

int BusService::onExplain(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    std::string name;
    int r = readName(message, NameKind::Request, &name, error);
    if (r < 0)
        return r;
    const BusServices &s = self->services_;
    const Explanation explanation =
        explain(name, s.loader.policy(), s.backend, s.coordinator, s.autoclean.settings());
    return replyWith(message,
                     [&](sd_bus_message *reply) { return appendExplanation(reply, explanation); });
}

int BusService::onSuggestAllowList(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    const BusServices &s = self->services_;
    std::vector<LoadedModule> modules;
    int r = s.kernel.readLoaded(&modules);
    if (r < 0)
        return sd_bus_error_set_errnof(error, r, "Could not read the loaded modules: %s",
                                       std::strerror(-r));
    std::vector<std::string> loaded;
    for (const LoadedModule &module : modules)
        loaded.push_back(module.name);
    const std::vector<AllowSuggestion> suggestions =
        suggestAllowList(s.history, loaded, s.registry, s.loader.policy());
    return replyWith(message, [&](sd_bus_message *reply) {
        return appendRecordArray(reply, suggestions, appendSuggestion);
    });
}

}  // namespace lkmd
