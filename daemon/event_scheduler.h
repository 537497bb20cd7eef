// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <memory>

#include <systemd/sd-event.h>

#include "scheduler.h"

namespace lkmd {

// The loop's clocks and timers on sd-event.
class EventScheduler final : public Scheduler {
public:
    explicit EventScheduler(sd_event *event) : event_(event) {}

    std::uint64_t monotonicUsec() override;
    std::uint64_t realtimeUsec() override;
    std::unique_ptr<Timer> timer(std::function<void()> fire) override;

private:
    sd_event *event_;
};

}  // namespace lkmd
