// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <systemd/sd-event.h>

#include "config.h"
#include "hotplug.h"
#include "sd_ptr.h"

struct udev;
struct udev_monitor;

namespace lkmd {

// What one receive from the monitor gave.
enum class Received { Event, Lost, Drained };

// Calls receive() until the socket is drained, but at most `max` times: sd-event dispatches one
// source per iteration, so a burst (or a flood) is handled in parts with the bus and the
// kernel-request socket served between them; the socket stays readable and the loop comes back.
// True when it stopped at the cap.
bool drainAtMost(std::size_t max, const std::function<Received()> &receive);

// libudev's netlink monitor inside the event loop. libudev already drops messages from senders
// other than the kernel (or udevd, for the "udev" source); the socket gets a large receive
// buffer so that bursts (coldplug triggers, docking stations) are not lost.
class UdevMonitor final : public UeventSource {
public:
    static constexpr int kReceiveBufferSize = 128 * 1024 * 1024;
    static constexpr std::size_t kMaxEventsPerWakeup = 64;

    // Auto picks "udev" when udevd runs (its control socket exists), else "kernel".
    static std::unique_ptr<UdevMonitor> create(sd_event *event, UeventSourceKind kind, int *error);
    ~UdevMonitor() override;

    int start(EventHandler onEvent, LossHandler onLoss) override;
    const char *sourceName() const { return sourceName_; }

private:
    UdevMonitor(sd_event *event, const char *sourceName);
    static int onReadable(sd_event_source *, int, uint32_t, void *userdata);
    Received receiveOne();

    sd_event *event_;
    const char *sourceName_;
    udev *udev_ = nullptr;
    udev_monitor *monitor_ = nullptr;
    EventSourcePtr source_;
    EventHandler onEvent_;
    LossHandler onLoss_;
};

}  // namespace lkmd
