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

// The one sentence lkmctl prints for a failed call, "lkmctl: cannot load 'x': <why>", with no
// trailing newline. module is raw; it is escaped here.
std::string describeCallFailure(Command command, std::string_view module,
                                const BusFailure &failure);

// sd_bus_open_system() failed with -error: there is no system bus to talk to.
std::string describeConnectFailure(int error);

}  // namespace lkmd::client
