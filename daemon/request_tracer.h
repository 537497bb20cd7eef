// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <systemd/sd-event.h>

#include "module_request_trace.h"
#include "sd_ptr.h"
#include "unique_fd.h"

namespace lkmd {

// The kernel's module:module_request events, read from a tracefs instance of lkmd's own
// (instances/lkmd: its own buffer and switches, the global trace untouched), with the boot
// clock so that a record's time compares with a process's start time. The event is enabled
// while lkmd runs and disabled, and the instance removed, when it stops.
class RequestTracer {
public:
    using RecordHandler = std::function<void(TraceRecord)>;

    // nullptr and *why ("not mounted at /sys/kernel/tracing", "no permission: ...", "the kernel
    // has no module:module_request event") when tracing cannot be had.
    static std::unique_ptr<RequestTracer> create(sd_event *event,
                                                 const std::filesystem::path &tracefs,
                                                 RecordHandler onRecord, std::string *why);
    ~RequestTracer();

    // Whether record times are CLOCK_BOOTTIME (else the pid-reuse check is skipped).
    bool bootClock() const { return bootClock_; }

private:
    RequestTracer(std::filesystem::path instance, RecordHandler onRecord);
    static int onReadable(sd_event_source *, int, uint32_t, void *userdata);
    void drain();

    std::filesystem::path instance_;
    RecordHandler onRecord_;
    UniqueFd pipe_;
    EventSourcePtr source_;
    std::string partial_;  // a line the last read cut
    bool bootClock_ = false;
};

}  // namespace lkmd
