// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "config.h"

namespace lkmd {

// A token bucket per requester for requests lkmd could not serve (not found, refused, invalid):
// one uid spraying socket() calls over every address family costs bounded work, and other
// requesters never wait behind it. Requests that load something cost nothing. Root and
// requesters lkmd cannot identify are not limited: root services keep working, and an unknown
// requester cannot be told from the others.
class RequestLimiter {
public:
    static constexpr std::size_t kMaxTracked = 4096;

    void setLimit(RequestLimit limit) { limit_ = limit; }

    // Whether a requester (its uid, -1 when unknown) may be served now.
    bool allows(std::int64_t uid, std::uint64_t nowUsec);
    // Takes a token for a request lkmd could not serve. True the first time the bucket runs dry
    // in a while: the caller then logs once.
    bool charge(std::int64_t uid, std::uint64_t nowUsec);

    std::size_t tracked() const { return buckets_.size(); }

private:
    struct Bucket {
        double tokens = 0;
        std::uint64_t refilledUsec = 0;
        std::optional<std::uint64_t> reportedUsec;
    };
    Bucket &bucketOf(std::int64_t uid, std::uint64_t nowUsec);
    void refill(Bucket &bucket, std::uint64_t nowUsec) const;

    RequestLimit limit_;
    std::map<std::int64_t, Bucket> buckets_;
};

}  // namespace lkmd
