// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "request_info.h"

namespace lkmd::client {

// One thing lkmctl monitor saw: a RequestAnswered, ModuleLoaded or ModuleUnloaded signal, or lkmd
// coming onto the bus or leaving it.
struct MonitorEvent {
    enum class Kind { Request, Loaded, Unloaded, Started, Stopped };
    Kind kind = Kind::Request;
    std::uint64_t timeUsec = 0;  // CLOCK_REALTIME when lkmctl received it
    RequestInfo request;         // Request
    std::string module;          // Loaded, Unloaded
    std::string origin;          // Loaded
    std::string reason;          // Unloaded: request or idle
};

// One line as journalctl -f prints them, "May 02 10:00:00 ...", '\n'-terminated:
//   loaded fat (kernel)
//   request fs-vfat from kernel: loaded fat, vfat in 12ms
//   request fs-cramfs from kernel: denied in 40us: denied by policy (Requests=fs-cramfs)
//   unloaded vfat (idle)
// A failed request is red and a refused one yellow when colors is set.
std::string formatMonitorLine(const MonitorEvent &event, bool colors);

// One object per event: "event" (request, loaded, unloaded, started, stopped), then "time" and
// "time_usec" of receipt, then the request's keys as requests --json has them, or "module" with
// "origin" or "reason".
nlohmann::ordered_json monitorEventJson(const MonitorEvent &event);

}  // namespace lkmd::client
