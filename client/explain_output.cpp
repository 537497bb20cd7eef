// SPDX-License-Identifier: LGPL-2.1-or-later
#include "explain_output.h"

#include <algorithm>

#include "terminal.h"
#include "text.h"

namespace lkmd::client {
namespace {

const std::vector<PropertyMap> &listOf(const RecordLists &lists, std::string_view key) {
    static const std::vector<PropertyMap> none;
    const auto it = lists.find(key);
    return it == lists.end() ? none : it->second;
}

// Left-aligned columns: width of the widest first cell.
std::size_t widest(const std::vector<std::string> &cells) {
    std::size_t width = 0;
    for (const std::string &cell : cells)
        width = std::max(width, displayWidth(cell));
    return width;
}

std::string padded(const std::string &cell, std::size_t width) {
    return cell + std::string(width - std::min(width, displayWidth(cell)), ' ');
}

void addResolution(const ExplainInfo &info, std::string &out) {
    const std::string name = quoteEscaped(info.request);
    if (!info.lookup.empty())
        out += name + " resolves to no module: " + escapeForTerminal(info.lookup) + ".\n";
    else if (info.modules.size() == 1 && info.modules.front() == info.request)
        out += name + " is a module.\n";
    else
        out += name + " resolves to " + joinedEscaped(info.modules) + ".\n";
    if (!info.hiddenByBlacklist.empty())
        out +=
            "modprobe.d's blacklist keeps it from " + joinedEscaped(info.hiddenByBlacklist) + ".\n";
}

void addSteps(const ExplainInfo &info, std::string &out) {
    if (info.steps.empty())
        return;
    out += "\nA load would insert, in this order:\n";
    std::vector<std::string> modules;
    std::vector<std::string> roles;
    for (const ExplainInfo::Step &step : info.steps) {
        modules.push_back(escapeForTerminal(step.module));
        roles.push_back(step.role == "requested" || step.forModule.empty()
                            ? escapeForTerminal(step.role)
                            : escapeForTerminal(step.role) + " of " +
                                  escapeForTerminal(step.forModule));
    }
    const std::size_t moduleWidth = widest(modules);
    const std::size_t roleWidth = widest(roles);
    for (std::size_t i = 0; i < info.steps.size(); ++i) {
        const ExplainInfo::Step &step = info.steps[i];
        out += "  " + padded(modules[i], moduleWidth) + "  " + padded(roles[i], roleWidth) + "  " +
               escapeForTerminal(step.state);
        if (!step.options.empty())
            out += ", options " + escapeForTerminal(step.options);
        if (step.installCommand)
            out += ", through an install command";
        out += "\n";
    }
}

void addRules(const ExplainInfo &info, std::string &out) {
    out += "\nPolicy:\n";
    if (info.rules.empty()) {
        out += "  No [Deny] pattern, rule or Allow= entry names it.\n";
        return;
    }
    for (const ExplainInfo::Rule &rule : info.rules) {
        out += "  " + escapeForTerminal(rule.where) + ": " + escapeForTerminal(rule.text);
        if (!rule.reason.empty())
            out += " (" + escapeForTerminal(rule.reason) + ")";
        if (!rule.mode.empty())
            out += " [" + escapeForTerminal(rule.mode) + "]";
        out += "\n";
    }
}

void addJudgements(const ExplainInfo &info, bool colors, std::string &out) {
    if (info.judgements.empty())
        return;
    out += "\nA load asked for by:\n";
    std::vector<std::string> who;
    for (const ExplainInfo::Judgement &judgement : info.judgements)
        who.push_back(escapeForTerminal(judgement.requester));
    const std::size_t width = widest(who);
    for (std::size_t i = 0; i < info.judgements.size(); ++i) {
        const ExplainInfo::Judgement &judgement = info.judgements[i];
        const Color color = judgement.verdict == "loads"     ? Color::Green
                            : judgement.verdict == "refused" ? Color::Red
                                                             : Color::Yellow;
        out += "  " + padded(who[i], width) + "  " +
               colored(escapeForTerminal(judgement.verdict), color, colors);
        if (!judgement.because.empty())
            out += ": " + escapeForTerminal(judgement.because);
        out += "\n";
    }
}

}  // namespace

ExplainInfo explainInfoFromProperties(const PropertyMap &properties, const RecordLists &lists) {
    ExplainInfo info;
    assignString(properties, "Request", info.request);
    assignString(properties, "Lookup", info.lookup);
    assignStrings(properties, "Modules", info.modules);
    assignStrings(properties, "HiddenByBlacklist", info.hiddenByBlacklist);
    assignInteger(properties, "IdleTimeoutUsec", info.idleTimeoutUsec);
    assignString(properties, "IdleTimeout", info.idleTimeout);
    for (const PropertyMap &record : listOf(lists, "Steps")) {
        ExplainInfo::Step step;
        assignString(record, "Module", step.module);
        assignString(record, "For", step.forModule);
        assignString(record, "Role", step.role);
        assignString(record, "State", step.state);
        assignString(record, "Options", step.options);
        assignBool(record, "InstallCommand", step.installCommand);
        info.steps.push_back(std::move(step));
    }
    for (const PropertyMap &record : listOf(lists, "Rules")) {
        ExplainInfo::Rule rule;
        assignString(record, "Where", rule.where);
        assignString(record, "Text", rule.text);
        assignString(record, "Reason", rule.reason);
        assignString(record, "Mode", rule.mode);
        info.rules.push_back(std::move(rule));
    }
    for (const PropertyMap &record : listOf(lists, "Judgements")) {
        ExplainInfo::Judgement judgement;
        assignString(record, "Requester", judgement.requester);
        assignString(record, "Verdict", judgement.verdict);
        assignString(record, "Because", judgement.because);
        info.judgements.push_back(std::move(judgement));
    }
    return info;
}

std::string formatExplanation(const ExplainInfo &info, bool colors) {
    std::string out;
    addResolution(info, out);
    addSteps(info, out);
    addRules(info, out);
    addJudgements(info, colors, out);
    if (!info.idleTimeout.empty())
        out += "\nUnloaded when idle: " + escapeForTerminal(info.idleTimeout) + ".\n";
    return out;
}

nlohmann::ordered_json explanationJson(const ExplainInfo &info) {
    nlohmann::ordered_json steps = nlohmann::ordered_json::array();
    for (const ExplainInfo::Step &step : info.steps)
        steps.push_back({{"module", step.module},
                         {"for", step.forModule},
                         {"role", step.role},
                         {"state", step.state},
                         {"options", step.options},
                         {"install_command", step.installCommand}});
    nlohmann::ordered_json rules = nlohmann::ordered_json::array();
    for (const ExplainInfo::Rule &rule : info.rules)
        rules.push_back({{"where", rule.where},
                         {"text", rule.text},
                         {"reason", rule.reason},
                         {"mode", rule.mode}});
    nlohmann::ordered_json judgements = nlohmann::ordered_json::array();
    for (const ExplainInfo::Judgement &judgement : info.judgements)
        judgements.push_back({{"requester", judgement.requester},
                              {"verdict", judgement.verdict},
                              {"because", judgement.because}});
    return {{"request", info.request},
            {"lookup", info.lookup},
            {"modules", info.modules},
            {"hidden_by_blacklist", info.hiddenByBlacklist},
            {"steps", std::move(steps)},
            {"rules", std::move(rules)},
            {"judgements", std::move(judgements)},
            {"idle_timeout_usec", info.idleTimeoutUsec},
            {"idle_timeout", info.idleTimeout}};
}

}  // namespace lkmd::client
