// SPDX-License-Identifier: LGPL-2.1-or-later
#include "provenance_log.h"

#include <cerrno>

#include "joined.h"

namespace lkmd {

std::vector<LogField> requesterFields(const Requester &requester) {
    if (!requester.known)
        return {{"REQUESTER", "unknown"}, {"REQUESTER_UNKNOWN_BECAUSE", requester.unknownBecause}};
    std::vector<LogField> fields = {
        {"REQUESTER_PID", std::to_string(requester.pid)},
        {"REQUESTER_COMM", requester.comm},
        {"REQUESTER_KERNEL_THREAD", requester.kernelThread ? "1" : "0"},
        {"REQUESTER_EXE", requester.exe},
        {"REQUESTER_UNIT", requester.unit},
        {"REQUESTER_CGROUP", requester.cgroup},
        {"REQUESTER_USERNS", namespaceName(requester.userns)},
        {"REQUESTER_PIDNS", namespaceName(requester.pidns)},
        {"REQUESTER_NETNS", namespaceName(requester.netns)},
        {"REQUESTER_CALL_SITE", requester.callSite},
        {"REQUESTER_FROM_INIT_OF", requester.fromInitOf},
    };
    if (requester.uid >= 0)
        fields.emplace_back("REQUESTER_UID", std::to_string(requester.uid));
    if (requester.gid >= 0)
        fields.emplace_back("REQUESTER_GID", std::to_string(requester.gid));
    return fields;
}

std::vector<LogField> requestFields(const RequestRecord &request) {
    std::vector<LogField> fields = {
        {"MESSAGE_ID", request.error == -EACCES       ? message_id::kRequestRefused
                       : !request.wouldRefuse.empty() ? message_id::kRequestAudited
                                                      : message_id::kRequestServed},
        {"REQUEST", request.request},
        {"ORIGIN", originName(request.origin)},
        {"RESULT", request.result()},
        {"DEVICE", request.device},
        {"SUBSYSTEM", request.subsystem},
        {"DURATION_USEC", std::to_string(request.durationUsec)},
    };
    for (const std::string &module : request.inserted)
        fields.emplace_back("MODULE", module);
    for (const std::string &because : request.wouldRefuse)
        fields.emplace_back("WOULD_REFUSE", because);
    for (LogField &field : requesterFields(request.requester))
        fields.push_back(std::move(field));
    return fields;
}

std::vector<LogField> moduleFields(const std::string &module, const ModuleRecord &record) {
    std::vector<LogField> fields = {
        {"MODULE", module},
        {"REQUEST", record.trigger},
        {"ORIGIN", originName(record.origin)},
        {"NEEDED_BY", record.neededBy},
        {"DEVICE", record.device},
        {"SUBSYSTEM", record.subsystem},
    };
    for (LogField &field : requesterFields(record.requester))
        fields.push_back(std::move(field));
    return fields;
}

std::string describeRequest(const RequestRecord &request) {
    std::string what = "'" + printable(request.request) + "' (" + originName(request.origin) + ")";
    if (!request.device.empty())
        what += " for " + request.device;
    const std::string by = request.origin == Origin::Kernel || request.origin == Origin::Bus
                               ? "; asked by " + request.requester.describe()
                               : std::string();
    const std::string result = request.result();
    std::string audit;
    for (const std::string &because : request.wouldRefuse)
        audit += "; would be " + because;  // "would be": the mode in force is audit
    if (!audit.empty())
        return (result == "loaded" ? "Loaded " + what + ": " + joined(request.inserted)
                                   : "Request " + what + ": " + result) +
               audit + by;
    if (result == "loaded")
        return "Loaded " + what + ": " + joined(request.inserted) + by;
    if (result == "present")
        return "Request " + what + ": already there" + by;
    if (result == "not-found")
        return "No module for " + what + by;
    if (result == "denied" || result == "invalid")
        return "Refused " + what + ": " + request.message + by;
    return "Could not load " + what + ": " + request.message + by;
}

}  // namespace lkmd
