// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernel_state.h"
#include "module_backend.h"
#include "module_registry.h"

namespace lkmd {

struct ModuleView {
    LoadedModule kernel;
    bool builtin = false;
    std::optional<ModuleRecord> record;  // empty: lkmd did not load the module that is loaded now
};

// What ListModules and GetModule answer. Reads only: a record of a module that someone else
// unloaded (or unloaded and loaded again) is not shown as lkmd's, but forgetting it is the
// sweep's business (autoclean.h), not a reader's.
class ModuleQueries {
public:
    ModuleQueries(ModuleBackend &backend, const ModuleRegistry &registry, const KernelState &kernel)
        : backend_(backend), registry_(registry), kernel_(kernel) {}

    // The module a caller means where one is expected (info, unload, pin): the module of that name
    // when the kernel has it (loaded or built in), else the one module a name, an alias or a
    // modalias resolves to, loaded or not. -EINVAL for a name whyInvalidModuleReference()
    // refuses, -ENOENT for a name nothing answers to, -ENOTUNIQ for an alias of several modules
    // (in *candidates, sorted).
    int resolve(const std::string &name, std::string *module,
                std::vector<std::string> *candidates) const;

    // Sorted by name.
    int list(std::vector<ModuleView> *modules) const;
    // -EINVAL for an invalid name, -ENOENT for a name no module answers to, -ESRCH for a module
    // that is not loaded.
    int get(const std::string &name, ModuleView *module, ModuleBindings *bindings) const;
    // lkmd's record is about the module loaded now (not one removed and loaded again since).
    bool loadedByLkmd(const std::string &module) const { return currentRecord(module).has_value(); }

private:
    std::optional<ModuleRecord> currentRecord(const std::string &module) const;

    ModuleBackend &backend_;
    const ModuleRegistry &registry_;
    const KernelState &kernel_;
};

}  // namespace lkmd
