// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <string_view>

#include "cli_args.h"

namespace lkmd::client {

// A failed call as sd-bus reported it, copied out of its sd_bus_error.
struct BusFailure {
    std::string name;     // D-Bus error name; "System.Error.E..." when sd-bus made it from an errno
    std::string message;  // what the daemon (or the bus) said, may be empty
    int error = 0;        // positive errno, after lkmd::bus::kErrorMap
};

// lkmctl's exit statuses, in the spirit of systemctl's (which follows LSB's for status and
// actions): scripts can tell "not loaded" and "no such module" from other failures, and a
// missing lkmd from a refusal.
inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;       // lkmd refused or failed the request
inline constexpr int kExitUsage = 2;         // unknown command or option, missing argument
inline constexpr int kExitNotLoaded = 3;     // the module is not loaded; status: lkmd not running
inline constexpr int kExitNoSuchModule = 4;  // no module or alias has that name
inline constexpr int kExitNotRunning = 7;    // lkmd is not running, or the bus cannot be reached

int exitStatusFor(Command command, const BusFailure &failure);

// Whether the failure says that lkmd (or the bus) could not be reached at all, and whether it
// says that nothing owns org.lkmd1 (lkmd is not running and was not started).
bool isUnreachable(const BusFailure &failure);
bool isNotRunning(const BusFailure &failure);

// The one sentence lkmctl prints for a failed call, "lkmctl: cannot load 'x': <why>", with no
// trailing newline. module is raw; it is escaped here. place says where lkmd was asked when not
// on this machine ("on root@host", "in container web"), empty otherwise.
std::string describeCallFailure(Command command, std::string_view module, const BusFailure &failure,
                                std::string_view place = {});

// Opening the bus failed with -error: there is no system bus to talk to.
std::string describeConnectFailure(int error, std::string_view place = {});

}  // namespace lkmd::client
