// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "fallback_compile.h"
#include "module_backend.h"
#include "options.h"
#include "use_probe.h"

namespace lkmd {

// What differs between the running kernel and the simulated one of the tests (tests/sim).
struct KernelAccess {
    BackendFactory backends;
    LinkKindReader linkKinds;  // empty: the kernel has no network links to ask about
    bool uevents = true;       // false: the uevents on this machine are another kernel's
    // Where to read who made each request (module:module_request); empty: nowhere, for this
    // reason.
    std::filesystem::path tracefs;
    std::string noTracingBecause;
    // The module tree's names, aliases and dependencies, to compile the policy for the helper and
    // kmod (fallback_compile.h). Called from a job.
    std::function<int(ModuleIndex *)> moduleIndex;
};

// lkmd from start to exit: connect, load the configuration, start the sources, serve. Returns the
// process exit status.
int runDaemon(const Options &options, KernelAccess kernel);

}  // namespace lkmd
