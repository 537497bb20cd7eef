// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <memory>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

namespace lkmd {

template <typename T, T *(*Unref)(T *)>
struct SdUnref {
    void operator()(T *object) const { Unref(object); }
};

using EventPtr = std::unique_ptr<sd_event, SdUnref<sd_event, sd_event_unref>>;
using EventSourcePtr =
    std::unique_ptr<sd_event_source, SdUnref<sd_event_source, sd_event_source_disable_unref>>;
using BusPtr = std::unique_ptr<sd_bus, SdUnref<sd_bus, sd_bus_flush_close_unref>>;
using BusMessagePtr =
    std::unique_ptr<sd_bus_message, SdUnref<sd_bus_message, sd_bus_message_unref>>;
using BusSlotPtr = std::unique_ptr<sd_bus_slot, SdUnref<sd_bus_slot, sd_bus_slot_unref>>;

// sd_bus_error is a value type with a free function; this keeps it from leaking on early returns.
class BusError {
public:
    BusError() = default;
    BusError(const BusError &) = delete;
    BusError &operator=(const BusError &) = delete;
    ~BusError() { sd_bus_error_free(&error_); }

    sd_bus_error *get() { return &error_; }
    const sd_bus_error *get() const { return &error_; }
    bool isSet() const { return sd_bus_error_is_set(&error_); }
    const char *name() const { return error_.name; }
    const char *message() const { return error_.message; }

private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

}  // namespace lkmd
