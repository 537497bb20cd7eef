// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "module_backend.h"

namespace lkmd {

// Where blocking work goes: finit_module, delete_module, install commands, sysfs walks, state
// file writes. A job runs on some other thread with that thread's own backend and returns a
// completion, which runs back on the loop thread. The daemon uses a worker pool; core tests run
// jobs one by one when they choose, without threads.
class JobRunner {
public:
    using Completion = std::function<void()>;
    using Job = std::function<Completion(ModuleBackend &)>;

    virtual ~JobRunner() = default;
    virtual void submit(Job job) = 0;
};

// A one-shot timer on the loop thread. Destroying it cancels it; its callback may destroy it.
class Timer {
public:
    virtual ~Timer() = default;
    // Fires once at CLOCK_MONOTONIC usec (replacing an earlier setting).
    virtual void setAt(std::uint64_t usec) = 0;
    virtual void cancel() = 0;
    virtual bool armed() const = 0;
    virtual std::uint64_t at() const = 0;  // meaningful while armed
};

// The loop's clocks and timers.
class Scheduler {
public:
    virtual ~Scheduler() = default;
    virtual std::uint64_t monotonicUsec() = 0;
    virtual std::uint64_t realtimeUsec() = 0;
    virtual std::unique_ptr<Timer> timer(std::function<void()> fire) = 0;
};

}  // namespace lkmd
