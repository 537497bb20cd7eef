// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>

#include <systemd/sd-bus.h>

#include "cli_args.h"

namespace lkmd::client {

// lkmctl monitor: follows lkmd's RequestAnswered, ModuleLoaded and ModuleUnloaded signals, and
// lkmd coming and going, until SIGINT or SIGTERM (exit 0) or until the bus goes away (exit 7).
// json is Off, or one object per line whatever the mode. Never starts lkmd.
int runMonitor(sd_bus *bus, JsonMode json, bool quiet, bool colors, const std::string &place);

}  // namespace lkmd::client
