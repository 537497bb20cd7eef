// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>

namespace lkmd {

// Runs an install command of modprobe.d for module as modprobe would: /bin/sh -c COMMAND with
// $CMDLINE_OPTS replaced by options and MODPROBE_MODULE=module in its environment. Blocks until
// it exits: 0 when it exited 0, else -EPERM. shell: tests only (dash clears the signal mask it
// was started with, bash shows it).
int runInstallCommand(const std::string &module, const std::string &command,
                      const std::string &options, const char *shell = "/bin/sh");

}  // namespace lkmd
