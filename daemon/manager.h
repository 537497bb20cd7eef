// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
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

// One answered load request, kept for `lkmctl requests`.
struct RequestRecord {
    std::string request;
    Origin origin = Origin::Bus;
    std::string device;
    std::uint64_t timeUsec = 0;     // CLOCK_REALTIME when it arrived
    std::uint64_t startedUsec = 0;  // CLOCK_MONOTONIC when it arrived
    std::uint64_t durationUsec = 0;
    int error = 0;
    std::string message;
    std::vector<std::string> inserted;

    // loaded, present, denied, not-found, invalid or failed
    const char *result() const;
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
    using Clock = std::function<std::uint64_t()>;  // microseconds

    static constexpr std::size_t kHistorySize = 256;

    Manager(ModuleBackend &backend, WorkerPool &pool, const KernelState &kernel, Clock realtime,
            Clock monotonic);

    void setListener(ManagerListener *listener) { listener_ = listener; }
    void setPolicy(Policy policy);
    const Policy &policy() const { return *policy_; }

    // device: the devpath a hotplug or coldplug request is for, empty otherwise.
    void load(const std::string &request, Origin origin, Done done, const std::string &device = {});
    void unload(const std::string &name, Done done);

    int list(std::vector<ModuleView> *modules);
    // -ENOENT for a name no module answers to, -ESRCH for a module that is not loaded.
    int get(const std::string &name, ModuleView *module, ModuleBindings *bindings);

    const ModuleRegistry &registry() const { return registry_; }
    const std::deque<RequestRecord> &history() const { return history_; }
    std::size_t loadsInFlight() const { return flights_.size(); }

private:
    struct Flight;
    using FlightDone = std::function<void(int error, const std::string &failedModule,
                                          const std::vector<std::string> &inserted)>;

    void insertModule(const std::string &module, const RequestRecord &request, FlightDone done);
    bool canJoin(const Flight &flight);
    void finishFlight(const std::string &module, const std::shared_ptr<Flight> &flight, int result,
                      const std::vector<std::string> &inserted, const std::string &failed);
    void finishRequest(RequestRecord record, Outcome outcome, const Done &done);
    Outcome checkUnloadable(const std::string &module);

    ModuleBackend &backend_;
    WorkerPool &pool_;
    const KernelState &kernel_;
    Clock realtime_;
    Clock monotonic_;
    std::shared_ptr<const Policy> policy_;
    ModuleRegistry registry_;
    std::map<std::string, std::shared_ptr<Flight>> flights_;
    std::deque<RequestRecord> history_;
    ManagerListener *listener_ = nullptr;
};

}  // namespace lkmd
