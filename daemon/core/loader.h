// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "load_coordinator.h"
#include "metrics.h"
#include "module_backend.h"
#include "request_limiter.h"
#include "request_log.h"
#include "scheduler.h"

namespace lkmd {

// The result of a load or unload, as the caller will be told it.
struct Outcome {
    int error = 0;        // negative errno
    std::string message;  // a phrase for the user when error != 0, e.g. "module is in use"
    std::vector<std::string> inserted;
};

struct LoadOptions {
    std::string device;      // hotplug and coldplug: the devpath the modalias came from
    bool autoclean = false;  // for bus loads: may be unloaded when idle (others always may)
    std::string subsystem;   // hotplug and coldplug: the device's subsystem
    Requester requester;     // kernel requests and bus calls: who asked
};

// Admits load requests from every front end (D-Bus, kernel requests, hotplug): validates the
// name, applies the policy, resolves the request to modules and their plans, has the coordinator
// carry them out, and records the answer. Lives on the loop thread.
class Loader {
public:
    using Done = std::function<void(Outcome)>;

    Loader(ModuleBackend &backend, LoadCoordinator &coordinator, RequestLog &log,
           Scheduler &scheduler, Metrics *metrics = nullptr);

    void setPolicy(Policy policy);
    const Policy &policy() const { return *policy_; }

    void load(const std::string &request, Origin origin, Done done, LoadOptions options = {});
    // What a request would load, without loading anything.
    int resolve(const std::string &request, std::vector<std::string> *modules) {
        return backend_.resolve(request, modules);
    }

    void setRequestLimit(RequestLimit limit) { limiter_.setLimit(limit); }

private:
    void admitAndStart(RequestRecord record, Done done, LoadOptions options, bool rechecked);
    void finish(RequestRecord record, Outcome outcome, const Done &done);

    ModuleBackend &backend_;
    LoadCoordinator &coordinator_;
    RequestLog &log_;
    Scheduler &scheduler_;
    Metrics *metrics_;
    std::shared_ptr<const Policy> policy_;
    RequestLimiter limiter_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // checked by recheck answers
};

}  // namespace lkmd
