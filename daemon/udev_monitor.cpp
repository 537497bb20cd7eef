// SPDX-License-Identifier: LGPL-2.1-or-later
#include "udev_monitor.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <libudev.h>

#include "log.h"

namespace lkmd {

std::unique_ptr<UdevMonitor> UdevMonitor::create(sd_event *event, UeventSourceKind kind,
                                                 int *error) {
    if (kind == UeventSourceKind::Auto)
        kind = access("/run/udev/control", F_OK) == 0 ? UeventSourceKind::Udev
                                                      : UeventSourceKind::Kernel;
    std::unique_ptr<UdevMonitor> monitor(
        new UdevMonitor(event, kind == UeventSourceKind::Udev ? "udev" : "kernel"));
    monitor->udev_ = udev_new();
    if (monitor->udev_ == nullptr) {
        *error = -ENOMEM;
        return nullptr;
    }
    monitor->monitor_ = udev_monitor_new_from_netlink(monitor->udev_, monitor->sourceName_);
    if (monitor->monitor_ == nullptr) {
        *error = errno != 0 ? -errno : -EIO;
        return nullptr;
    }
    // Needs CAP_NET_ADMIN to exceed rmem_max; without it the default is kept, which is only less
    // robust against bursts, so go on.
    if (udev_monitor_set_receive_buffer_size(monitor->monitor_, kReceiveBufferSize) < 0)
        logger("hotplug")->warn("Could not enlarge the uevent receive buffer, continuing");
    *error = 0;
    return monitor;
}

UdevMonitor::UdevMonitor(sd_event *event, const char *sourceName)
    : event_(event), sourceName_(sourceName) {}

UdevMonitor::~UdevMonitor() {
    source_.reset();
    udev_monitor_unref(monitor_);
    udev_unref(udev_);
}

int UdevMonitor::start(EventHandler onEvent, LossHandler onLoss) {
    onEvent_ = std::move(onEvent);
    onLoss_ = std::move(onLoss);
    int r = udev_monitor_enable_receiving(monitor_);
    if (r < 0)
        return r;
    sd_event_source *source = nullptr;
    r = sd_event_add_io(event_, &source, udev_monitor_get_fd(monitor_), EPOLLIN, onReadable, this);
    if (r < 0)
        return r;
    source_.reset(source);
    return 0;
}

bool drainAtMost(std::size_t max, const std::function<Received()> &receive) {
    for (std::size_t taken = 0; taken < max; ++taken)
        if (receive() == Received::Drained)
            return false;
    return true;
}

int UdevMonitor::onReadable(sd_event_source *, int, uint32_t, void *userdata) {
    auto *self = static_cast<UdevMonitor *>(userdata);
    drainAtMost(kMaxEventsPerWakeup, [self] { return self->receiveOne(); });
    return 0;
}

Received UdevMonitor::receiveOne() {
    for (;;) {
        errno = 0;
        udev_device *device = udev_monitor_receive_device(monitor_);
        if (device == nullptr) {
            const int error = errno;
            if (error == ENOBUFS) {
                onLoss_();
                return Received::Lost;
            }
            if (error == EINTR)
                continue;
            // EAGAIN: drained. Anything else: this message was unreadable; epoll wakes us again
            // for the next one, so a persistent error cannot spin here.
            if (error != 0 && error != EAGAIN)
                logger("hotplug")->debug("Ignored an unreadable uevent: {}", std::strerror(error));
            return Received::Drained;
        }
        Uevent event;
        auto text = [](const char *value) { return value != nullptr ? value : ""; };
        event.action = text(udev_device_get_action(device));
        event.devpath = text(udev_device_get_devpath(device));
        event.subsystem = text(udev_device_get_subsystem(device));
        event.modalias = text(udev_device_get_property_value(device, "MODALIAS"));
        udev_device_unref(device);
        onEvent_(event);
        return Received::Event;
    }
}

}  // namespace lkmd
