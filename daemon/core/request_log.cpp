// SPDX-License-Identifier: LGPL-2.1-or-later
#include "request_log.h"

#include <cerrno>

namespace lkmd {

const char *RequestRecord::result() const {
    if (limited)
        return "limited";
    switch (-error) {
        case 0:
            return inserted.empty() ? "present" : "loaded";
        case EACCES:
            return "denied";
        case ENOENT:
            return "not-found";
        default:
            return invalidName ? "invalid" : "failed";
    }
}

void RequestLog::add(RequestRecord record) {
    counts_[record.result()]++;
    records_.push_back(std::move(record));
    if (records_.size() > kCapacity)
        records_.pop_front();
    if (listener_)
        listener_(records_.back());
}

}  // namespace lkmd
