// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "module_registry.h"
#include "requester.h"

namespace lkmd {

// One answered load request, kept for `lkmctl requests`.
struct RequestRecord {
    std::string request;
    Origin origin = Origin::Bus;
    std::string device;
    std::string subsystem;
    Requester requester;
    std::uint64_t timeUsec = 0;     // CLOCK_REALTIME when it arrived
    std::uint64_t startedUsec = 0;  // CLOCK_MONOTONIC when it arrived
    std::uint64_t durationUsec = 0;
    int error = 0;
    std::string message;
    std::vector<std::string> inserted;
    bool invalidName = false;              // refused before any lookup
    bool limited = false;                  // answered without a lookup: the requester made too many
    std::vector<std::string> wouldRefuse;  // what Mode=audit let through

    // loaded, present, denied, not-found, invalid, limited or failed
    const char *result() const;
};

// The last requests in the order they were answered, oldest first; bounded, so that a flood of
// requests costs no memory. Counts by result cover every request since start.
class RequestLog {
public:
    static constexpr std::size_t kCapacity = 256;
    using Listener = std::function<void(const RequestRecord &)>;

    // Told of every record as it is added; one listener, the root's, which notes the load
    // history and has the bus emit RequestAnswered.
    void setListener(Listener listener) { listener_ = std::move(listener); }

    void add(RequestRecord record);
    const std::deque<RequestRecord> &records() const { return records_; }
    // result() -> how many requests ended so.
    const std::map<std::string, std::uint64_t> &counts() const { return counts_; }

private:
    std::deque<RequestRecord> records_;
    std::map<std::string, std::uint64_t> counts_;
    Listener listener_;
};

}  // namespace lkmd
