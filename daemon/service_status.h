// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lkmd {

// What `lkmctl status` shows of lkmd itself beyond its modules: filled by the composition root at
// start and on every reload, read by the bus service.
struct ServiceStatus {
    std::uint64_t startedAtUsec = 0;  // CLOCK_REALTIME
    std::string hotplugMode;          // load, observe or off: what is in force
    std::uint64_t idleTimeoutUsec = 0;
    std::vector<std::string> configFiles;   // read at the last start or reload
    std::vector<std::string> configErrors;  // what that read found, one line each
    // Empty, or the one program the kernel runs for every helper (CONFIG_STATIC_USERMODEHELPER).
    std::vector<std::string> staticUsermodeHelper;
};

// CONFIG_STATIC_USERMODEHELPER of the running kernel, from /boot/config-$(uname -r): empty when it
// is not set or that file cannot be read.
std::vector<std::string> readStaticUsermodeHelper();

// Whether two paths lead to the same file, symbolic links followed.
bool sameFile(const std::string &a, const std::string &b);

}  // namespace lkmd
