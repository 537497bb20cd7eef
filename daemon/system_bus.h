// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <string>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "sd_ptr.h"

namespace lkmd {

// The system bus for a daemon that starts before the bus does: lkmd starts early in boot, as
// systemd-udevd does, so that coldplug and kernel requests need not wait for dbus-daemon. The
// connection waits for the bus socket to appear (sd_bus_set_watch_bind) and the name is asked
// for once connected; nothing on the loop blocks on either. Calls that come meanwhile wait in
// dbus-daemon's activation queue (org.lkmd1.service), signals in sd-bus's own.
class SystemBus {
public:
    // Called once if the name cannot be had or the connection breaks (then lkmd exits and the
    // service manager restarts it): what failed, and the negative errno.
    using Failure = std::function<void(const std::string &what, int error)>;

    // The address is $DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket.
    static int open(sd_event *event, Failure failed, std::unique_ptr<SystemBus> *bus);

    sd_bus *get() const { return bus_.get(); }
    // Asks for the name; failed() runs if it is refused or already taken.
    int requestName(const char *name);

private:
    explicit SystemBus(Failure failed) : failed_(std::move(failed)) {}
    static int onNameReply(sd_bus_message *reply, void *userdata, sd_bus_error *);
    static int onDisconnected(sd_bus_message *, void *userdata, sd_bus_error *);
    void fail(const std::string &what, int error);

    BusPtr bus_;
    Failure failed_;
    BusSlotPtr nameSlot_;
    BusSlotPtr disconnectSlot_;
    std::string name_;
    bool failedOnce_ = false;
};

}  // namespace lkmd
