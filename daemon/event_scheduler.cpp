// SPDX-License-Identifier: LGPL-2.1-or-later
#include "event_scheduler.h"

#include <chrono>
#include <cstring>

#include "log.h"
#include "sd_ptr.h"

namespace lkmd {
namespace {

class EventTimer final : public Timer {
public:
    EventTimer(sd_event *event, std::function<void()> fire)
        : event_(event), fire_(std::move(fire)) {}

    void setAt(std::uint64_t usec) override {
        at_ = usec;
        if (source_) {
            sd_event_source_set_time(source_.get(), usec);
            sd_event_source_set_enabled(source_.get(), SD_EVENT_ONESHOT);
            return;
        }
        sd_event_source *source = nullptr;
        // 1 ms, not sd-event's default of 250 ms: init waits look again every 10 ms.
        const int r = sd_event_add_time(event_, &source, CLOCK_MONOTONIC, usec, 1000, onTime, this);
        if (r < 0) {
            // Without a timer the work waits for the next event that re-arms it.
            logger("lkmd")->warn("Could not arm a timer: {}, will retry on the next event",
                                 std::strerror(-r));
            return;
        }
        source_.reset(source);
    }
    void cancel() override {
        if (source_)
            sd_event_source_set_enabled(source_.get(), SD_EVENT_OFF);
    }
    bool armed() const override {
        int enabled = SD_EVENT_OFF;
        return source_ && sd_event_source_get_enabled(source_.get(), &enabled) >= 0 &&
               enabled != SD_EVENT_OFF;
    }
    std::uint64_t at() const override { return at_; }

private:
    static int onTime(sd_event_source *, uint64_t, void *userdata) {
        // A copy: the callback may destroy this timer.
        std::function<void()> fire = static_cast<EventTimer *>(userdata)->fire_;
        fire();
        return 0;
    }

    sd_event *event_;
    std::function<void()> fire_;
    EventSourcePtr source_;
    std::uint64_t at_ = 0;
};

}  // namespace

std::uint64_t EventScheduler::monotonicUsec() {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

std::uint64_t EventScheduler::realtimeUsec() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::unique_ptr<Timer> EventScheduler::timer(std::function<void()> fire) {
    return std::make_unique<EventTimer>(event_, std::move(fire));
}

}  // namespace lkmd
