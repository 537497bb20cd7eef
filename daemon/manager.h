// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
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
    bool invalidName = false;  // refused before any lookup

    // loaded, present, denied, not-found, invalid or failed
    const char *result() const;
};

struct LoadOptions {
    std::string device;      // hotplug and coldplug: the devpath the modalias came from
    bool autoclean = false;  // for bus loads: may be unloaded when idle (others always may)
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

    void addListener(ManagerListener *listener) { listeners_.push_back(listener); }
    void removeListener(ManagerListener *listener) { std::erase(listeners_, listener); }
    void setPolicy(Policy policy);
    const Policy &policy() const { return *policy_; }

    void load(const std::string &request, Origin origin, Done done, LoadOptions options = {});
    // reason goes to ModuleUnloaded: "request" for a caller, "idle" for autoclean.
    void unload(const std::string &name, Done done, const char *reason = "request");
    // -ESRCH when lkmd did not load the module.
    int setPinned(const std::string &name, bool pinned);

    // Where the registry is kept across restarts (the runtime dir lives as long as the kernel).
    void setStateFile(std::filesystem::path path) { stateFile_ = std::move(path); }
    // Takes back the records of a previous run for modules still loaded by that same load.
    int restore();

    int list(std::vector<ModuleView> *modules);
    // What a request would load, without loading anything.
    int resolve(const std::string &request, std::vector<std::string> *modules) {
        return backend_.resolve(request, modules);
    }
    // -ENOENT for a name no module answers to, -ESRCH for a module that is not loaded.
    int get(const std::string &name, ModuleView *module, ModuleBindings *bindings);

    const ModuleRegistry &registry() const { return registry_; }
    bool isUnloading(const std::string &module) const { return unloading_.count(module) != 0; }
    const std::deque<RequestRecord> &history() const { return history_; }
    std::size_t loadsInFlight() const { return flights_.size(); }
    std::size_t workInFlight() const { return flights_.size() + unloading_.size(); }

private:
    struct Flight;
    using FlightDone = std::function<void(int error, const std::string &failedModule,
                                          const std::vector<std::string> &inserted)>;

    void insertModule(const std::string &module, const RequestRecord &request, bool autoclean,
                      FlightDone done);
    bool canJoin(const Flight &flight);
    void awaitInit(const std::string &module, const RequestRecord &request, bool autoclean,
                   FlightDone done);
    static constexpr int kInitWaitSteps = 100;
    static constexpr std::chrono::milliseconds kInitWaitStep{10};
    void finishFlight(const std::string &module, const std::shared_ptr<Flight> &flight, int result,
                      const std::vector<std::string> &inserted, const std::string &failed);
    void finishRequest(RequestRecord record, Outcome outcome, const Done &done);
    Outcome checkUnloadable(const std::string &module);
    void finishUnload(const std::string &module, const char *reason, int result, const Done &done);
    void save();

    ModuleBackend &backend_;
    WorkerPool &pool_;
    const KernelState &kernel_;
    Clock realtime_;
    Clock monotonic_;
    std::shared_ptr<const Policy> policy_;
    ModuleRegistry registry_;
    std::map<std::string, std::shared_ptr<Flight>> flights_;
    std::deque<RequestRecord> history_;
    // Loads that arrived for a module while it was being removed run once the removal is done:
    // never a load and an unload of one module at once.
    std::map<std::string, std::vector<std::function<void()>>> unloading_;
    std::vector<ManagerListener *> listeners_;
    std::filesystem::path stateFile_;
};

}  // namespace lkmd
