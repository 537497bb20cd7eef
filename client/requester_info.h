// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <string>

#include "property_map.h"

namespace lkmd::client {

// Who caused a request: the Requester* keys of a module or request record (org.lkmd1.Manager.xml).
struct RequesterInfo {
    std::string description;  // "Requester": the daemon's own words, as in its journal
    bool known = false;
    std::string unknownBecause;
    std::int32_t pid = 0;
    std::string comm;
    std::int64_t uid = -1;      // -1 when unknown
    std::string unit;           // systemd unit or scope, empty when none
    std::string userNamespace;  // initial, other or unknown
    std::string callSite;       // the kernel function that asked, empty when unknown
    std::string fromInitOf;     // the module whose init asked, empty when none
};

// Unknown keys are ignored and missing or mistyped keys keep their defaults.
RequesterInfo requesterInfoFromProperties(const PropertyMap &properties);

}  // namespace lkmd::client
