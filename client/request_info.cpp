// SPDX-License-Identifier: LGPL-2.1-or-later
#include "request_info.h"

namespace lkmd::client {

RequestInfo requestInfoFromProperties(const PropertyMap &properties) {
    RequestInfo request;
    assignString(properties, "Request", request.request);
    assignString(properties, "Origin", request.origin);
    assignString(properties, "Device", request.device);
    assignInteger(properties, "Time", request.timeUsec);
    assignInteger(properties, "DurationUsec", request.durationUsec);
    assignString(properties, "Result", request.result);
    assignString(properties, "Message", request.message);
    assignStrings(properties, "Modules", request.modules);
    return request;
}

}  // namespace lkmd::client
