// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <systemd/sd-event.h>

#include "sd_ptr.h"

namespace lkmd {

// SIGTERM and SIGINT ask lkmd to stop (once the loads and unloads in flight have finished and
// been answered: udevd learned not to kill a probe halfway); SIGHUP to re-read its
// configuration. Taken on the loop through signalfd.
class SignalWatch {
public:
    // Before any thread starts: a worker with the signals unblocked would take them and die.
    static int blockSignals();

    static std::unique_ptr<SignalWatch> create(sd_event *event, std::function<void()> stop,
                                               std::function<void()> reload, int *error);

private:
    SignalWatch(std::function<void()> stop, std::function<void()> reload)
        : stop_(std::move(stop)), reload_(std::move(reload)) {}
    static int onSignal(sd_event_source *, const struct signalfd_siginfo *info, void *userdata);

    std::function<void()> stop_;
    std::function<void()> reload_;
    std::vector<EventSourcePtr> sources_;
};

}  // namespace lkmd
