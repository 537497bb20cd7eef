// SPDX-License-Identifier: LGPL-2.1-or-later
#include "system_bus.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "log.h"

namespace lkmd {

int SystemBus::open(sd_event *event, Failure failed, std::unique_ptr<SystemBus> *out) {
    std::unique_ptr<SystemBus> self(new SystemBus(std::move(failed)));
    sd_bus *raw = nullptr;
    int r = sd_bus_new(&raw);
    if (r < 0)
        return r;
    self->bus_.reset(raw);
    sd_bus *bus = raw;
    const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
    r = sd_bus_set_address(bus, address != nullptr && *address != '\0'
                                    ? address
                                    : "unix:path=/run/dbus/system_bus_socket");
    if (r < 0)
        return r;
    // As sd_bus_open_system() does: a client of the bus, which checks each caller itself.
    r = sd_bus_set_bus_client(bus, true);
    if (r >= 0)
        r = sd_bus_set_trusted(bus, false);
    if (r >= 0)
        r = sd_bus_negotiate_creds(
            bus, true, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_EFFECTIVE_CAPS);
    if (r >= 0)
        r = sd_bus_set_description(bus, "lkmd");
    if (r >= 0)
        r = sd_bus_set_watch_bind(bus, true);
    if (r >= 0)
        r = sd_bus_set_connected_signal(bus, true);
    if (r < 0)
        return r;
    r = sd_bus_start(bus);
    if (r < 0)
        return r;
    r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
    if (r < 0)
        return r;
    // Without a bus nobody can manage lkmd: say so, and let the service manager restart it.
    sd_bus_slot *slot = nullptr;
    r = sd_bus_match_signal(bus, &slot, "org.freedesktop.DBus.Local", nullptr,
                            "org.freedesktop.DBus.Local", "Disconnected", onDisconnected,
                            self.get());
    if (r < 0)
        return r;
    self->disconnectSlot_.reset(slot);
    *out = std::move(self);
    return 0;
}

int SystemBus::requestName(const char *name) {
    name_ = name;
    sd_bus_slot *slot = nullptr;
    const int r = sd_bus_request_name_async(bus_.get(), &slot, name, 0, onNameReply, this);
    if (r < 0)
        return r;
    nameSlot_.reset(slot);
    return 0;
}

int SystemBus::onNameReply(sd_bus_message *reply, void *userdata, sd_bus_error *) {
    auto *self = static_cast<SystemBus *>(userdata);
    const sd_bus_error *error = sd_bus_message_get_error(reply);
    if (error != nullptr) {
        // A connection that broke before the reply fails the call too: Disconnected says so.
        if (sd_bus_is_open(self->bus_.get()) > 0)
            self->fail("Could not acquire the name " + self->name_, -sd_bus_error_get_errno(error));
        return 0;
    }
    // Without SD_BUS_NAME_QUEUE sd-bus asks not to be queued: 1 is "primary owner", 4 "already
    // the owner", 3 "someone else has it".
    std::uint32_t result = 0;
    const int r = sd_bus_message_read(reply, "u", &result);
    if (r < 0 || (result != 1 && result != 4)) {
        self->fail("Could not acquire the name " + self->name_, r < 0 ? r : -EEXIST);
        return 0;
    }
    logger("lkmd")->info("Connected to the system bus as {}", self->name_);
    return 0;
}

int SystemBus::onDisconnected(sd_bus_message *, void *userdata, sd_bus_error *) {
    static_cast<SystemBus *>(userdata)->fail("Lost the system bus", -ECONNRESET);
    return 0;
}

void SystemBus::fail(const std::string &what, int error) {
    if (failedOnce_)
        return;
    failedOnce_ = true;
    failed_(what, error);
}

}  // namespace lkmd
