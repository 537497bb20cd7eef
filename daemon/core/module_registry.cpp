// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_registry.h"

#include <cerrno>
#include <map>

#include "record_text.h"
#include "request_name.h"

namespace lkmd {

const char *originName(Origin origin) {
    switch (origin) {
        case Origin::Bus:
            return "bus";
        case Origin::Kernel:
            return "kernel";
        case Origin::Hotplug:
            return "hotplug";
        case Origin::Coldplug:
            return "coldplug";
    }
    return "unknown";
}

bool parseOrigin(std::string_view text, Origin *origin) {
    for (Origin candidate : {Origin::Bus, Origin::Kernel, Origin::Hotplug, Origin::Coldplug})
        if (text == originName(candidate)) {
            *origin = candidate;
            return true;
        }
    return false;
}

void ModuleRegistry::record(const std::string &module, ModuleRecord record) {
    records_[module] = std::move(record);
    changed();
}

void ModuleRegistry::forget(const std::string &module) {
    if (records_.erase(module) != 0)
        changed();
}

void ModuleRegistry::confirm(const std::string &module, std::uint64_t identity) {
    auto it = records_.find(module);
    if (it == records_.end())
        return;
    it->second.inserting = false;
    it->second.identity = identity;
    changed();
}

int ModuleRegistry::setPinned(const std::string &module, bool pinned) {
    auto it = records_.find(module);
    if (it == records_.end())
        return -ESRCH;
    if (it->second.pinned != pinned) {
        it->second.pinned = pinned;
        changed();
    }
    return 0;
}

const ModuleRecord *ModuleRegistry::find(const std::string &module) const {
    auto it = records_.find(module);
    return it == records_.end() ? nullptr : &it->second;
}

const ModuleRecord *ModuleRegistry::findCurrent(const std::string &module,
                                                std::uint64_t currentIdentity) const {
    const ModuleRecord *record = find(module);
    if (record == nullptr)
        return nullptr;
    if (record->inserting || (currentIdentity != 0 && currentIdentity == record->identity))
        return record;
    return nullptr;
}

std::vector<std::string> ModuleRegistry::reconcile(
    const std::function<std::uint64_t(const std::string &)> &identityOf) {
    std::vector<std::string> forgotten;
    for (auto it = records_.begin(); it != records_.end();) {
        const std::uint64_t identity = it->second.inserting ? 0 : identityOf(it->first);
        if (!it->second.inserting && (identity == 0 || identity != it->second.identity)) {
            forgotten.push_back(it->first);
            it = records_.erase(it);
        } else {
            ++it;
        }
    }
    if (!forgotten.empty())
        changed();
    return forgotten;
}

const char *needName(Need need) {
    switch (need) {
        case Need::Requested:
            return "requested";
        case Need::Dependency:
            return "dependency";
        case Need::SoftDependency:
            return "soft dependency";
    }
    return "requested";
}

bool parseNeed(std::string_view text, Need *need) {
    for (Need candidate : {Need::Requested, Need::Dependency, Need::SoftDependency})
        if (text == needName(candidate)) {
            *need = candidate;
            return true;
        }
    return false;
}

namespace {

constexpr std::string_view kHeader = "lkmd-modules 3";

bool parseFlag(std::string_view text, bool *value) {
    if (text != "0" && text != "1")
        return false;
    *value = text == "1";
    return true;
}

// The fields of a record, each with its writer and its reader; a record is read back only
// when every field listed here is there and valid.
struct Field {
    const char *key;
    std::string (*write)(const ModuleRecord &);
    bool (*read)(std::string_view, ModuleRecord *);
};

std::string flag(bool value) {
    return value ? "1" : "0";
}

bool readText(std::string_view text, std::string *out) {
    return unescapeField(text, out);
}

const Field kFields[] = {
    {"origin", [](const ModuleRecord &r) { return std::string(originName(r.origin)); },
     [](std::string_view v, ModuleRecord *r) { return parseOrigin(v, &r->origin); }},
    {"trigger", [](const ModuleRecord &r) { return escapeField(r.trigger); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->trigger); }},
    {"device", [](const ModuleRecord &r) { return escapeField(r.device); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->device); }},
    {"subsystem", [](const ModuleRecord &r) { return escapeField(r.subsystem); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->subsystem); }},
    {"need", [](const ModuleRecord &r) { return std::string(needName(r.need)); },
     [](std::string_view v, ModuleRecord *r) { return parseNeed(v, &r->need); }},
    {"needed_by", [](const ModuleRecord &r) { return escapeField(r.neededBy); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->neededBy); }},
    {"loaded_at", [](const ModuleRecord &r) { return std::to_string(r.loadedAtUsec); },
     [](std::string_view v, ModuleRecord *r) { return parseNumber(v, &r->loadedAtUsec); }},
    {"autoclean", [](const ModuleRecord &r) { return flag(r.autoclean); },
     [](std::string_view v, ModuleRecord *r) { return parseFlag(v, &r->autoclean); }},
    {"pinned", [](const ModuleRecord &r) { return flag(r.pinned); },
     [](std::string_view v, ModuleRecord *r) { return parseFlag(v, &r->pinned); }},
    {"identity", [](const ModuleRecord &r) { return std::to_string(r.identity); },
     [](std::string_view v, ModuleRecord *r) { return parseNumber(v, &r->identity); }},
    {"inserting", [](const ModuleRecord &r) { return flag(r.inserting); },
     [](std::string_view v, ModuleRecord *r) { return parseFlag(v, &r->inserting); }},
    {"requester_known", [](const ModuleRecord &r) { return flag(r.requester.known); },
     [](std::string_view v, ModuleRecord *r) { return parseFlag(v, &r->requester.known); }},
    {"requester_unknown_because",
     [](const ModuleRecord &r) { return escapeField(r.requester.unknownBecause); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->requester.unknownBecause); }},
    {"requester_pid", [](const ModuleRecord &r) { return std::to_string(r.requester.pid); },
     [](std::string_view v, ModuleRecord *r) { return parseNumber(v, &r->requester.pid); }},
    {"requester_kernel_thread",
     [](const ModuleRecord &r) { return flag(r.requester.kernelThread); },
     [](std::string_view v, ModuleRecord *r) { return parseFlag(v, &r->requester.kernelThread); }},
    {"requester_comm", [](const ModuleRecord &r) { return escapeField(r.requester.comm); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->requester.comm); }},
    {"requester_exe", [](const ModuleRecord &r) { return escapeField(r.requester.exe); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->requester.exe); }},
    {"requester_uid", [](const ModuleRecord &r) { return std::to_string(r.requester.uid); },
     [](std::string_view v, ModuleRecord *r) { return parseNumber(v, &r->requester.uid); }},
    {"requester_gid", [](const ModuleRecord &r) { return std::to_string(r.requester.gid); },
     [](std::string_view v, ModuleRecord *r) { return parseNumber(v, &r->requester.gid); }},
    {"requester_cgroup", [](const ModuleRecord &r) { return escapeField(r.requester.cgroup); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->requester.cgroup); }},
    {"requester_unit", [](const ModuleRecord &r) { return escapeField(r.requester.unit); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->requester.unit); }},
    {"requester_userns",
     [](const ModuleRecord &r) { return std::string(namespaceName(r.requester.userns)); },
     [](std::string_view v, ModuleRecord *r) { return parseNamespace(v, &r->requester.userns); }},
    {"requester_pidns",
     [](const ModuleRecord &r) { return std::string(namespaceName(r.requester.pidns)); },
     [](std::string_view v, ModuleRecord *r) { return parseNamespace(v, &r->requester.pidns); }},
    {"requester_netns",
     [](const ModuleRecord &r) { return std::string(namespaceName(r.requester.netns)); },
     [](std::string_view v, ModuleRecord *r) { return parseNamespace(v, &r->requester.netns); }},
    {"requester_call_site", [](const ModuleRecord &r) { return escapeField(r.requester.callSite); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->requester.callSite); }},
    {"requester_from_init_of",
     [](const ModuleRecord &r) { return escapeField(r.requester.fromInitOf); },
     [](std::string_view v, ModuleRecord *r) { return readText(v, &r->requester.fromInitOf); }},
};

bool parseRecord(std::string_view line, std::string *name, ModuleRecord *record) {
    std::string_view rawName;
    std::map<std::string_view, std::string_view> values;
    if (!splitRecordLine(line, &rawName, &values))
        return false;
    *name = std::string(rawName);
    if (whyInvalidModuleName(*name) != nullptr || normalizeModuleName(*name) != *name)
        return false;
    for (const Field &field : kFields) {
        auto value = values.find(field.key);
        if (value == values.end() || !field.read(value->second, record))
            return false;
    }
    return true;
}

}  // namespace

std::string ModuleRegistry::serialize() const {
    std::string text(kHeader);
    text += '\n';
    for (const auto &[name, record] : records_) {
        text += escapeField(name);
        for (const Field &field : kFields)
            text += std::string("\t") + field.key + "=" + field.write(record);
        text += '\n';
    }
    return text;
}

int ModuleRegistry::parse(std::string_view text, ModuleRegistry *registry, std::size_t *skipped) {
    return readRecordLines(
        text, kHeader,
        [registry](std::string_view line) {
            std::string name;
            ModuleRecord record;
            if (!parseRecord(line, &name, &record))
                return false;
            registry->records_[name] = std::move(record);
            return true;
        },
        skipped);
}

}  // namespace lkmd
