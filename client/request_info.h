// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli_args.h"
#include "property_map.h"
#include "requester_info.h"

namespace lkmd::client {

// A record of ListRequests: one load request lkmd answered (keys documented in
// org.lkmd1.Manager.xml).
struct RequestInfo {
    std::string request;         // the requested name, e.g. "fs-vfat"
    std::string origin;          // kernel, bus, hotplug or coldplug
    std::string device;          // hotplug and coldplug: the device path, else empty
    std::uint64_t timeUsec = 0;  // CLOCK_REALTIME when it arrived, 0 when unknown
    std::uint64_t durationUsec = 0;
    std::string result;                // loaded, present, denied, not-found, invalid or failed
    std::string message;               // why it failed, empty on success
    std::vector<std::string> modules;  // the modules it inserted
    RequesterInfo requester;
};

// Unknown keys are ignored and missing or mistyped keys keep their defaults.
RequestInfo requestInfoFromProperties(const PropertyMap &properties);

// What requests shows: in the order the requests arrived (ListRequests gives the order lkmd
// answered them in, and a slow load is answered after requests that came later), only those
// that match filter's origins, results, uids and units, and arrived at sinceUsec or later.
std::vector<RequestInfo> selectRequests(std::vector<RequestInfo> requests,
                                        const RequestFilter &filter, std::uint64_t sinceUsec);

}  // namespace lkmd::client
