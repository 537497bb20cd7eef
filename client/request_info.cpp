// SPDX-License-Identifier: LGPL-2.1-or-later
#include "request_info.h"

#include <algorithm>

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
    request.requester = requesterInfoFromProperties(properties);
    return request;
}

namespace {

template <typename T>
bool listedOrEmpty(const std::vector<T> &list, const T &value) {
    return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

std::vector<RequestInfo> selectRequests(std::vector<RequestInfo> requests,
                                        const RequestFilter &filter, std::uint64_t sinceUsec) {
    std::erase_if(requests, [&](const RequestInfo &request) {
        return !listedOrEmpty(filter.origins, request.origin) ||
               !listedOrEmpty(filter.results, request.result) ||
               !listedOrEmpty(filter.uids, request.requester.uid) ||
               !listedOrEmpty(filter.units, request.requester.unit) || request.timeUsec < sinceUsec;
    });
    std::stable_sort(
        requests.begin(), requests.end(),
        [](const RequestInfo &a, const RequestInfo &b) { return a.timeUsec < b.timeUsec; });
    return requests;
}

}  // namespace lkmd::client
