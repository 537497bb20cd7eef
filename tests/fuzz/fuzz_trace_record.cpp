// SPDX-License-Identifier: LGPL-2.1-or-later
// Who asked: lines of lkmd's module:module_request trace (the comm is any process's prctl() text,
// the name a mount's fs type) and cgroup paths. Fields: a trace line, a cgroup path. Also: a
// line printed as the kernel prints it, from a comm and a name in the input, parses back to them.
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz_input.h"
#include "module_request_trace.h"
#include "requester.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    const std::vector<std::string> fields = fuzzFields(data, size, 3);
    // lkmd reads trace_pipe line by line.
    const std::string line = fields[0].substr(0, fields[0].find('\n'));
    if (const auto record = lkmd::parseModuleRequestTrace(line))
        FUZZ_ASSERT(!record->name.empty());

    const std::string unit = lkmd::unitOfCgroup(fields[1]);
    FUZZ_ASSERT(unit.find('/') == std::string::npos);
    FUZZ_ASSERT(unit.empty() || fields[1].find(unit) != std::string::npos);

    // comm: at most 15 bytes (TASK_COMM_LEN); name: no space, as request names never hold one.
    const std::string comm = fields[2].substr(0, 15);
    const std::string name = fields[1].substr(0, 60);
    if (comm.empty() || name.empty() || comm.find_first_of("\n") != std::string::npos ||
        name.find_first_of(" \n\t") != std::string::npos)
        return 0;
    char printed[256];
    std::snprintf(printed, sizeof(printed),
                  "%16s-812     [000] .....  1234.567890: module_request: %s wait=1 "
                  "call_site=get_fs_type+0x2c/0xb0",
                  comm.c_str(), name.c_str());
    const auto record = lkmd::parseModuleRequestTrace(printed);
    FUZZ_ASSERT(record.has_value());
    FUZZ_ASSERT(record->pid == 812);
    FUZZ_ASSERT(record->name == name);
    FUZZ_ASSERT(record->callSite == "get_fs_type");
    return 0;
}
