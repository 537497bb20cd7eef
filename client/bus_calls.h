// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <systemd/sd-bus.h>

#include "bus_failure.h"
#include "bus_handles.h"
#include "cli_args.h"
#include "explain_output.h"
#include "module_info.h"
#include "property_map.h"
#include "request_info.h"
#include "suggest_output.h"

namespace lkmd::client {

// The system bus lkmctl talks to: this machine's, a remote host's over ssh (-H, through
// systemd-stdio-bridge there) or a local container's (-M).
struct Connection {
    BusPtr bus;
    std::string place;  // "on root@host", "in container web", or empty for this machine
};

// Returns a negative errno and leaves *connection without a bus when it cannot be opened.
int openConnection(const CliArgs &args, Connection *connection);

// Appends a call's arguments; returns a negative errno on failure.
using AppendArguments = std::function<int(sd_bus_message *)>;

// One org.lkmd1.Manager call. Returns a negative errno and fills failure when the call fails.
int callManager(sd_bus *bus, const char *method, const AppendArguments &appendArguments,
                std::uint64_t timeoutUsec, MessagePtr &reply, BusFailure &failure);
// The same, for the methods whose only argument is a string (or none, for nullptr).
int callManager(sd_bus *bus, const char *method, const char *argument, std::uint64_t timeoutUsec,
                MessagePtr &reply, BusFailure &failure);

// Whether anything owns org.lkmd1, asked of the bus itself: unlike a call to lkmd, this never
// starts it through bus activation. 1 or 0, or a negative errno with failure filled.
int lkmdIsRunning(sd_bus *bus, BusFailure &failure);

// The reads, each filling failure when it fails (also for a reply of the wrong shape).
int getManagerProperties(sd_bus *bus, PropertyMap &properties, BusFailure &failure);
int listModules(sd_bus *bus, std::vector<ModuleInfo> &modules, BusFailure &failure);
int listRequests(sd_bus *bus, std::vector<RequestInfo> &requests, BusFailure &failure);
int getModule(sd_bus *bus, const std::string &name, ModuleInfo &module, BusFailure &failure);
int explainName(sd_bus *bus, const std::string &name, ExplainInfo &info, BusFailure &failure);
int suggestAllowList(sd_bus *bus, std::vector<SuggestionInfo> &suggestions, BusFailure &failure);

}  // namespace lkmd::client
