// SPDX-License-Identifier: LGPL-2.1-or-later
#include "request_limiter.h"

#include <algorithm>

namespace lkmd {
namespace {

bool limited(std::int64_t uid) {
    return uid > 0;  // root (0) and unknown (-1) are not
}

}  // namespace

void RequestLimiter::refill(Bucket &bucket, std::uint64_t nowUsec) const {
    const double earned = static_cast<double>(nowUsec - bucket.refilledUsec) /
                          static_cast<double>(limit_.intervalUsec) * limit_.burst;
    bucket.tokens = std::min<double>(limit_.burst, bucket.tokens + earned);
    bucket.refilledUsec = nowUsec;
}

RequestLimiter::Bucket &RequestLimiter::bucketOf(std::int64_t uid, std::uint64_t nowUsec) {
    auto it = buckets_.find(uid);
    if (it != buckets_.end()) {
        refill(it->second, nowUsec);
        return it->second;
    }
    if (buckets_.size() >= kMaxTracked) {
        // Forget buckets that are full again: they hold nothing a new one would not.
        for (auto old = buckets_.begin(); old != buckets_.end();) {
            refill(old->second, nowUsec);
            old = old->second.tokens >= limit_.burst ? buckets_.erase(old) : std::next(old);
        }
        if (buckets_.size() >= kMaxTracked)
            buckets_.erase(buckets_.begin());
    }
    Bucket &bucket = buckets_[uid];
    bucket.tokens = limit_.burst;
    bucket.refilledUsec = nowUsec;
    return bucket;
}

bool RequestLimiter::allows(std::int64_t uid, std::uint64_t nowUsec) {
    if (!limited(uid))
        return true;
    if (buckets_.find(uid) == buckets_.end())
        return true;  // never charged: full
    return bucketOf(uid, nowUsec).tokens >= 1;
}

bool RequestLimiter::charge(std::int64_t uid, std::uint64_t nowUsec) {
    if (!limited(uid))
        return false;
    Bucket &bucket = bucketOf(uid, nowUsec);
    bucket.tokens = std::max(0.0, bucket.tokens - 1);
    if (bucket.tokens >= 1 ||
        (bucket.reportedUsec && nowUsec - *bucket.reportedUsec < limit_.intervalUsec))
        return false;
    bucket.reportedUsec = nowUsec;
    return true;
}

}  // namespace lkmd
