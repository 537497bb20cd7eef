// SPDX-License-Identifier: LGPL-2.1-or-later
#include "load_history.h"

#include <cerrno>
#include <cstring>

#include "joined.h"
#include "record_text.h"
#include "request_name.h"

namespace lkmd {
namespace {

constexpr std::string_view kHeader = "lkmd-history 1";

// Who asked, without what changes every time (the pid).
std::string whoAsked(const Requester &requester) {
    if (!requester.known)
        return "unknown requester";
    std::string text = (requester.kernelThread ? "kernel thread '" : "'") + requester.comm + "'";
    if (requester.uid >= 0)
        text += " uid " + std::to_string(requester.uid);
    if (!requester.unit.empty())
        text += " (" + requester.unit + ")";
    if (requester.userns == Namespace::Other)
        text += " in a user namespace";
    if (!requester.callSite.empty())
        text += " from " + requester.callSite;
    return text;
}

}  // namespace

bool LoadHistory::add(const std::string &name, const RequestRecord &record,
                      std::vector<std::string> modules, std::string who) {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
        if (entries_.size() >= kMaxEntries)
            return false;  // more names than a module tree has: keep what is there
        it = entries_.emplace(name, HistoryEntry{}).first;
        it->second.firstUsec = record.timeUsec;
    }
    HistoryEntry &entry = it->second;
    const bool fresh = entry.count == 0;
    entry.origin = originName(record.origin);
    if (!modules.empty())
        entry.modules = std::move(modules);
    entry.who = std::move(who);
    ++entry.count;
    entry.lastUsec = record.timeUsec;
    ++changes_;
    return fresh;
}

bool LoadHistory::note(const RequestRecord &record) {
    const std::string result = record.result();
    if (record.invalidName || (result != "loaded" && result != "present"))
        return false;
    if (record.origin == Origin::Kernel || record.origin == Origin::Bus)
        return add(record.request, record, record.inserted, whoAsked(record.requester));
    // A device's modalias is no name for an allow-list: its modules are.
    bool fresh = false;
    for (const std::string &module : record.inserted)
        fresh = add(module, record, {module},
                    "device " + record.device +
                        (record.subsystem.empty() ? "" : " (" + record.subsystem + ")")) ||
                fresh;
    return fresh;
}

std::string LoadHistory::serialize() const {
    std::string text(kHeader);
    text += '\n';
    for (const auto &[name, entry] : entries_) {
        text += escapeField(name);
        text += "\torigin=" + entry.origin;
        text += "\tmodules=" + joined(entry.modules, ",");
        text += "\twho=" + escapeField(entry.who);
        text += "\tcount=" + std::to_string(entry.count);
        text += "\tfirst=" + std::to_string(entry.firstUsec);
        text += "\tlast=" + std::to_string(entry.lastUsec);
        text += '\n';
    }
    return text;
}

namespace {

bool parseModules(std::string_view text, std::vector<std::string> *modules) {
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        const std::string name(text.substr(0, comma));
        if (whyInvalidModuleName(name) != nullptr)
            return false;
        modules->push_back(name);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    }
    return true;
}

bool parseEntry(std::string_view line, std::string *name, HistoryEntry *entry) {
    std::string_view rawName;
    std::map<std::string_view, std::string_view> fields;
    if (!splitRecordLine(line, &rawName, &fields) || !unescapeField(rawName, name) ||
        whyInvalidRequestName(*name) != nullptr)
        return false;
    const auto field = [&](const char *key) -> const std::string_view * {
        const auto it = fields.find(key);
        return it == fields.end() ? nullptr : &it->second;
    };
    Origin origin;
    const std::string_view *value = field("origin");
    if (value == nullptr || !parseOrigin(*value, &origin))
        return false;
    entry->origin = originName(origin);
    return (value = field("modules")) && parseModules(*value, &entry->modules) &&
           (value = field("who")) && unescapeField(*value, &entry->who) &&
           (value = field("count")) && parseNumber(*value, &entry->count) &&
           (value = field("first")) && parseNumber(*value, &entry->firstUsec) &&
           (value = field("last")) && parseNumber(*value, &entry->lastUsec);
}

}  // namespace

int LoadHistory::parse(std::string_view text, LoadHistory *history, std::size_t *skipped) {
    return readRecordLines(
        text, kHeader,
        [history](std::string_view line) {
            std::string name;
            HistoryEntry entry;
            if (history->entries_.size() >= kMaxEntries || !parseEntry(line, &name, &entry))
                return false;
            history->entries_[name] = std::move(entry);
            return true;
        },
        skipped);
}

}  // namespace lkmd
