// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_queries.h"

#include <algorithm>
#include <cerrno>

#include "request_name.h"

namespace lkmd {

std::optional<ModuleRecord> ModuleQueries::currentRecord(const std::string &module) const {
    if (registry_.find(module) == nullptr)
        return std::nullopt;
    const ModuleRecord *record = registry_.findCurrent(module, kernel_.moduleIdentity(module));
    return record ? std::optional<ModuleRecord>(*record) : std::nullopt;
}

int ModuleQueries::resolve(const std::string &name, std::string *module,
                           std::vector<std::string> *candidates) const {
    if (whyInvalidModuleReference(name) != nullptr)
        return -EINVAL;
    const std::string normalized = normalizeModuleName(name);
    if (!looksLikeModalias(name) && backend_.state(normalized) != ModuleState::Absent) {
        *module = normalized;
        return 0;
    }
    std::vector<std::string> resolved;
    if (backend_.resolve(name, &resolved) < 0 || resolved.empty())
        return -ENOENT;
    std::sort(resolved.begin(), resolved.end());
    resolved.erase(std::unique(resolved.begin(), resolved.end()), resolved.end());
    // The module's own name among several: an alias shared with others does not hide it.
    if (std::find(resolved.begin(), resolved.end(), normalized) != resolved.end())
        resolved = {normalized};
    if (resolved.size() > 1) {
        *candidates = std::move(resolved);
        return -ENOTUNIQ;
    }
    *module = resolved.front();
    return 0;
}

int ModuleQueries::list(std::vector<ModuleView> *modules) const {
    std::vector<LoadedModule> loaded;
    const int r = kernel_.readLoaded(&loaded);
    if (r < 0)
        return r;
    modules->clear();
    for (LoadedModule &module : loaded) {
        std::optional<ModuleRecord> record = currentRecord(module.name);
        modules->push_back({std::move(module), false, std::move(record)});
    }
    std::sort(modules->begin(), modules->end(), [](const ModuleView &a, const ModuleView &b) {
        return a.kernel.name < b.kernel.name;
    });
    return 0;
}

int ModuleQueries::get(const std::string &name, ModuleView *module,
                       ModuleBindings *bindings) const {
    if (whyInvalidRequestName(name) != nullptr)
        return -EINVAL;
    const std::string normalized = normalizeModuleName(name);
    std::vector<LoadedModule> loaded;
    const int r = kernel_.readLoaded(&loaded);
    if (r < 0)
        return r;
    auto it = std::find_if(loaded.begin(), loaded.end(),
                           [&](const LoadedModule &m) { return m.name == normalized; });
    if (it != loaded.end()) {
        *module = {std::move(*it), false, currentRecord(normalized)};
        *bindings = kernel_.readBindings(normalized);
        return 0;
    }
    if (backend_.state(normalized) == ModuleState::Builtin) {
        *module = {};
        module->kernel.name = normalized;
        module->builtin = true;
        *bindings = kernel_.readBindings(normalized);
        return 0;
    }
    std::vector<std::string> resolved;
    return backend_.resolve(name, &resolved) < 0 ? -ENOENT : -ESRCH;
}

}  // namespace lkmd
