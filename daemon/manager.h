// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kernel_state.h"
#include "module_backend.h"
#include "module_registry.h"
#include "worker_pool.h"

namespace lkmd {

// The result of a load or unload, as the caller will be told it.
struct Outcome {
    int error = 0;        // negative errno
    std::string message;  // a phrase for the user when error != 0, e.g. "module is in use"
    std::vector<std::string> inserted;
};

struct ModuleView {
    LoadedModule kernel;
    bool builtin = false;
    std::optional<ModuleRecord> record;  // empty: lkmd did not load it
};

class ManagerListener {
public:
    virtual ~ManagerListener() = default;
    virtual void moduleLoaded(const std::string &module, Origin origin) = 0;
    virtual void moduleUnloaded(const std::string &module, const char *reason) = 0;
};

// Loads and unloads on behalf of every front end (D-Bus, kernel requests, hotplug). Lives on the
// event loop thread; blocking work goes to the worker pool and comes back as completions.
class Manager {
public:
    using Done = std::function<void(Outcome)>;
    using RealtimeClock = std::function<std::uint64_t()>;

    Manager(ModuleBackend &backend, WorkerPool &pool, const KernelState &kernel,
            RealtimeClock clock);

    void setListener(ManagerListener *listener) { listener_ = listener; }

    void load(const std::string &request, Origin origin, Done done);
    void unload(const std::string &name, Done done);

    int list(std::vector<ModuleView> *modules);
    // -ENOENT for a name no module answers to, -ESRCH for a module that is not loaded.
    int get(const std::string &name, ModuleView *module, ModuleBindings *bindings);

    const ModuleRegistry &registry() const { return registry_; }

private:
    void finishInsert(const std::string &request, Origin origin, int result,
                      const std::string &module, std::vector<std::string> inserted,
                      Outcome *aggregate);
    Outcome checkUnloadable(const std::string &module);

    ModuleBackend &backend_;
    WorkerPool &pool_;
    const KernelState &kernel_;
    RealtimeClock clock_;
    ModuleRegistry registry_;
    ManagerListener *listener_ = nullptr;
};

}  // namespace lkmd
