// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_registry.h"

#include <cerrno>
#include <cstdlib>
#include <set>

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

void ModuleRegistry::record(const std::string &module, ModuleRecord record) {
    records_[module] = std::move(record);
}

void ModuleRegistry::forget(const std::string &module) {
    records_.erase(module);
}

const ModuleRecord *ModuleRegistry::find(const std::string &module) const {
    auto it = records_.find(module);
    return it == records_.end() ? nullptr : &it->second;
}

ModuleRecord *ModuleRegistry::findMutable(const std::string &module) {
    auto it = records_.find(module);
    return it == records_.end() ? nullptr : &it->second;
}

namespace {

constexpr std::string_view kHeader = "lkmd-modules 1";

std::string field(std::string text) {
    for (char &c : text)
        if (c == '\t' || c == '\n')
            c = '?';
    return text.empty() ? "-" : text;
}

std::vector<std::string_view> splitTabs(std::string_view line) {
    std::vector<std::string_view> fields;
    for (;;) {
        const std::size_t tab = line.find('\t');
        fields.push_back(line.substr(0, tab));
        if (tab == std::string_view::npos)
            return fields;
        line.remove_prefix(tab + 1);
    }
}

bool parseOrigin(std::string_view text, Origin *origin) {
    for (Origin candidate : {Origin::Bus, Origin::Kernel, Origin::Hotplug, Origin::Coldplug})
        if (text == originName(candidate)) {
            *origin = candidate;
            return true;
        }
    return false;
}

}  // namespace

std::string ModuleRegistry::serialize() const {
    std::string text(kHeader);
    text += '\n';
    for (const auto &[name, record] : records_) {
        text += field(name) + '\t' + originName(record.origin) + '\t' + field(record.trigger) +
                '\t' + field(record.device) + '\t' + std::to_string(record.loadedAtUsec) + '\t' +
                (record.autoclean ? "1" : "0") + '\t' + (record.pinned ? "1" : "0") + '\t' +
                std::to_string(record.identity) + '\n';
    }
    return text;
}

int ModuleRegistry::parse(std::string_view text, ModuleRegistry *registry) {
    const std::size_t newline = text.find('\n');
    if (text.substr(0, newline) != kHeader)
        return -EINVAL;
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        const std::vector<std::string_view> fields = splitTabs(text.substr(0, end));
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        ModuleRecord record;
        if (fields.size() != 8 || !parseOrigin(fields[1], &record.origin))
            continue;
        auto text_of = [](std::string_view value) {
            return value == "-" ? std::string() : std::string(value);
        };
        record.trigger = text_of(fields[2]);
        record.device = text_of(fields[3]);
        const std::string loadedAt(fields[4]);
        const std::string identity(fields[7]);
        record.loadedAtUsec = std::strtoull(loadedAt.c_str(), nullptr, 10);
        record.autoclean = fields[5] == "1";
        record.pinned = fields[6] == "1";
        record.identity = std::strtoull(identity.c_str(), nullptr, 10);
        registry->record(std::string(fields[0]), std::move(record));
    }
    return 0;
}

void ModuleRegistry::retainOnly(const std::vector<std::string> &loaded) {
    const std::set<std::string> present(loaded.begin(), loaded.end());
    std::erase_if(records_, [&](const auto &entry) { return present.count(entry.first) == 0; });
}

}  // namespace lkmd
