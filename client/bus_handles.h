// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdlib>
#include <memory>

#include <systemd/sd-bus.h>

namespace lkmd::client {

struct BusCloser {
    void operator()(sd_bus *bus) const { sd_bus_flush_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, BusCloser>;

struct MessageUnref {
    void operator()(sd_bus_message *message) const { sd_bus_message_unref(message); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

struct FreeDeleter {
    void operator()(void *memory) const { std::free(memory); }
};
using MallocedString = std::unique_ptr<char, FreeDeleter>;

// Owns what sd-bus stores in an sd_bus_error, which must be freed even when the call succeeded.
class BusError {
public:
    BusError() = default;
    BusError(const BusError &) = delete;
    BusError &operator=(const BusError &) = delete;
    ~BusError() { sd_bus_error_free(&error_); }

    sd_bus_error *get() { return &error_; }
    const sd_bus_error *get() const { return &error_; }

private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

}  // namespace lkmd::client
