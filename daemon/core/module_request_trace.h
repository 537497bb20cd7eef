// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lkmd {

// One record of the kernel's module:module_request tracepoint, which fires at the top of
// __request_module() in the requesting process's context (docs/kernel.md, "Who asked").
struct TraceRecord {
    std::int32_t pid = 0;             // the requesting task (a thread id for a threaded requester)
    std::string comm;                 // as the trace prints it (at most 15 bytes, may be padded)
    std::string name;                 // what was requested: user text for fs-<type> and the like
    bool wait = true;                 // request_module() (waits) or request_module_nowait()
    std::string callSite;             // the calling kernel function, offset dropped: "get_fs_type"
    std::uint64_t timestampUsec = 0;  // the instance's trace clock
};

// Parses one line of trace_pipe:
//   "           mount-812     [000] .....  1234.567890: module_request: fs-vfat wait=1
//    call_site=get_fs_type+0x2c/0xb0"
// The comm and the name may hold spaces, brackets, dashes or colons: both are found from the
// fixed parts around them. nullopt for other events and for anything malformed.
std::optional<TraceRecord> parseModuleRequestTrace(std::string_view line);

}  // namespace lkmd
