// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_registry.h"

#include <cerrno>
#include <charconv>

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

namespace {

constexpr std::string_view kHeader = "lkmd-modules 2";
constexpr std::size_t kFields = 9;

std::string escaped(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : text) {
        if (c == '\t' || c == '\n' || c == '%' || c == '\r') {
            const auto byte = static_cast<unsigned char>(c);
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        } else {
            out += c;
        }
    }
    return out;
}

bool unescaped(std::string_view text, std::string *out) {
    out->clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out->push_back(text[i]);
            continue;
        }
        unsigned value = 0;
        if (text.size() - i < 3)
            return false;
        const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
        if (ec != std::errc() || end != text.data() + i + 3)
            return false;
        out->push_back(static_cast<char>(value));
        i += 2;
    }
    return true;
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

bool parseNumber(std::string_view text, std::uint64_t *value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

bool parseFlag(std::string_view text, bool *value) {
    if (text != "0" && text != "1")
        return false;
    *value = text == "1";
    return true;
}

// Fields: name origin trigger device loadedAt autoclean pinned identity inserting.
bool parseRecord(std::string_view line, std::string *name, ModuleRecord *record) {
    const std::vector<std::string_view> fields = splitTabs(line);
    if (fields.size() != kFields)
        return false;
    *name = std::string(fields[0]);
    if (whyInvalidModuleName(*name) != nullptr || normalizeModuleName(*name) != *name)
        return false;
    return parseOrigin(fields[1], &record->origin) && unescaped(fields[2], &record->trigger) &&
           unescaped(fields[3], &record->device) && parseNumber(fields[4], &record->loadedAtUsec) &&
           parseFlag(fields[5], &record->autoclean) && parseFlag(fields[6], &record->pinned) &&
           parseNumber(fields[7], &record->identity) && parseFlag(fields[8], &record->inserting);
}

}  // namespace

std::string ModuleRegistry::serialize() const {
    std::string text(kHeader);
    text += '\n';
    for (const auto &[name, record] : records_) {
        text += escaped(name) + '\t' + originName(record.origin) + '\t' + escaped(record.trigger) +
                '\t' + escaped(record.device) + '\t' + std::to_string(record.loadedAtUsec) + '\t' +
                (record.autoclean ? "1" : "0") + '\t' + (record.pinned ? "1" : "0") + '\t' +
                std::to_string(record.identity) + '\t' + (record.inserting ? "1" : "0") + '\n';
    }
    return text;
}

int ModuleRegistry::parse(std::string_view text, ModuleRegistry *registry, std::size_t *skipped) {
    *skipped = 0;
    const std::size_t newline = text.find('\n');
    if (text.substr(0, newline) != kHeader)
        return -EINVAL;
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        std::string name;
        ModuleRecord record;
        if (parseRecord(line, &name, &record))
            registry->records_[name] = std::move(record);
        else
            ++*skipped;
    }
    return 0;
}

}  // namespace lkmd
