// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "module_request_trace.h"
#include "requester.h"
#include "scheduler.h"

namespace lkmd {

// Which of lkmd's worker threads is inserting which module: a trace record made by one of them
// is a request_module() from that module's init (docs/kernel.md, "Requests from a module's
// init"). Written by workers, read by the loop.
class InsertingThreads {
public:
    class Scope {
    public:
        Scope(InsertingThreads *threads, const std::string &module);
        ~Scope();
        Scope(const Scope &) = delete;
        Scope &operator=(const Scope &) = delete;

    private:
        InsertingThreads *threads_;
        std::int32_t tid_;
    };

    std::optional<std::string> moduleOf(std::int32_t tid) const;

private:
    mutable std::mutex lock_;
    std::map<std::int32_t, std::string> modules_;
};

// Pairs each request the helper brings with the kernel's trace record of it (the same name) and
// says who asked. The record is made before the helper even starts, but the trace pipe is read
// a little later: a request waits up to kTraceWaitUsec for its record. Concurrent requests for
// one name are paired in order; each requester is recorded, though which helper call was whose
// the kernel does not say. Bounded: unpaired records expire, and at most kMaxRecords are held.
class RequesterMatcher {
public:
    static constexpr std::uint64_t kTraceWaitUsec = 250'000;
    static constexpr std::uint64_t kRecordLifetimeUsec = 30'000'000;
    static constexpr std::size_t kMaxRecords = 512;

    // Reads what identifies a requester (readRequester over /proc, with InsertingThreads).
    using Reader = std::function<Requester(const TraceRecord &record)>;
    using Identified = std::function<void(Requester)>;

    RequesterMatcher(Scheduler &scheduler, Reader reader);
    ~RequesterMatcher();

    // Without a trace of the requests every requester is unknown, for this reason.
    void setUnavailable(std::string why);
    void setAvailable();
    bool available() const { return unavailableBecause_.empty(); }

    void traced(TraceRecord record);
    // done is called once: at once when the record is there (or tracing is unavailable), else
    // when it comes or after kTraceWaitUsec.
    void identify(const std::string &name, Identified done);

    std::size_t heldRecords() const;
    std::size_t waitingRequests() const { return waiting_.size(); }

private:
    struct Held {
        TraceRecord record;
        std::uint64_t arrivedUsec;
    };
    struct Waiting {
        std::string name;
        Identified done;
        std::unique_ptr<Timer> timer;
    };

    void expire();
    void giveUp(std::list<Waiting>::iterator waiting);

    Scheduler &scheduler_;
    Reader reader_;
    std::string unavailableBecause_ = "tracing not started";
    std::map<std::string, std::deque<Held>> records_;
    std::size_t recordCount_ = 0;
    std::list<Waiting> waiting_;
};

}  // namespace lkmd
