// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "keep_reason.h"
#include "kernel_state.h"
#include "module_backend.h"

namespace lkmd {

// The kinds of the network links that exist ("dummy", "bridge"): 0 or -errno.
using LinkKindReader = std::function<int(std::set<std::string> *kinds)>;

struct ProbeTarget {
    std::string module;
    std::string deviceLoadedFor;  // hotplug and coldplug loads: the devpath, else empty
};

// Reads what uses modules, for the unload check and autoclean: /proc/modules, bound drivers,
// live network links of the kinds a module provides, the device a module was loaded for. Blocking
// reads (sysfs walks, a netlink dump): called from jobs, on any thread, with that thread's
// backend (it resolves "rtnl-link-<kind>" to modules).
class UseProbe {
public:
    UseProbe(const KernelState &kernel, LinkKindReader linkKinds)
        : kernel_(kernel), linkKinds_(std::move(linkKinds)) {}

    // One /proc/modules read and at most one link dump for all targets.
    std::map<std::string, UseFacts> gather(const std::vector<ProbeTarget> &targets,
                                           ModuleBackend &backend) const;

private:
    const KernelState &kernel_;
    LinkKindReader linkKinds_;
};

}  // namespace lkmd
