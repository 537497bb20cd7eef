// SPDX-License-Identifier: LGPL-2.1-or-later
#include "requester_matcher.h"

#include <unistd.h>

namespace lkmd {

InsertingThreads::Scope::Scope(InsertingThreads *threads, const std::string &module)
    : threads_(threads), tid_(static_cast<std::int32_t>(gettid())) {
    if (threads_ == nullptr)
        return;
    std::lock_guard guard(threads_->lock_);
    threads_->modules_[tid_] = module;
}

InsertingThreads::Scope::~Scope() {
    if (threads_ == nullptr)
        return;
    std::lock_guard guard(threads_->lock_);
    threads_->modules_.erase(tid_);
}

std::optional<std::string> InsertingThreads::moduleOf(std::int32_t tid) const {
    std::lock_guard guard(lock_);
    auto it = modules_.find(tid);
    return it == modules_.end() ? std::nullopt : std::optional<std::string>(it->second);
}

RequesterMatcher::RequesterMatcher(Scheduler &scheduler, Reader reader)
    : scheduler_(scheduler), reader_(std::move(reader)) {}

RequesterMatcher::~RequesterMatcher() = default;

void RequesterMatcher::setUnavailable(std::string why) {
    unavailableBecause_ = std::move(why);
    records_.clear();
    recordCount_ = 0;
    while (!waiting_.empty())
        giveUp(waiting_.begin());
}

void RequesterMatcher::setAvailable() {
    unavailableBecause_.clear();
}

std::size_t RequesterMatcher::heldRecords() const {
    return recordCount_;
}

void RequesterMatcher::expire() {
    const std::uint64_t now = scheduler_.monotonicUsec();
    for (auto it = records_.begin(); it != records_.end();) {
        std::deque<Held> &held = it->second;
        while (!held.empty() && (now - held.front().arrivedUsec > kRecordLifetimeUsec ||
                                 recordCount_ > kMaxRecords)) {
            held.pop_front();
            --recordCount_;
        }
        it = held.empty() ? records_.erase(it) : std::next(it);
    }
}

void RequesterMatcher::traced(TraceRecord record) {
    if (!available())
        return;
    for (auto waiting = waiting_.begin(); waiting != waiting_.end(); ++waiting) {
        if (waiting->name != record.name)
            continue;
        Identified done = std::move(waiting->done);
        waiting_.erase(waiting);
        done(reader_(record));
        return;
    }
    const std::string name = record.name;
    records_[name].push_back({std::move(record), scheduler_.monotonicUsec()});
    ++recordCount_;
    expire();
}

void RequesterMatcher::identify(const std::string &name, Identified done) {
    if (!available()) {
        done(unknownRequester(unavailableBecause_));
        return;
    }
    expire();
    auto held = records_.find(name);
    if (held != records_.end()) {
        TraceRecord record = std::move(held->second.front().record);
        held->second.pop_front();
        --recordCount_;
        if (held->second.empty())
            records_.erase(held);
        done(reader_(record));
        return;
    }
    auto waiting = waiting_.insert(waiting_.end(), Waiting{name, std::move(done), nullptr});
    waiting->timer = scheduler_.timer([this, waiting] { giveUp(waiting); });
    waiting->timer->setAt(scheduler_.monotonicUsec() + kTraceWaitUsec);
}

void RequesterMatcher::giveUp(std::list<Waiting>::iterator waiting) {
    Identified done = std::move(waiting->done);
    waiting_.erase(waiting);
    done(unknownRequester(available() ? "no trace record of the request came"
                                      : unavailableBecause_));
}

}  // namespace lkmd
