// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "module_backend.h"
#include "scheduler.h"
#include "sd_ptr.h"
#include "unique_fd.h"

namespace lkmd {

// Runs blocking kernel work (finit_module, delete_module, install commands) off the event loop.
// Each worker owns its own backend, since libkmod contexts are per thread. A job returns a
// completion that runs back on the loop thread, which owns all state: the core needs no locks.
//
// The pool grows on demand: a module's init may call request_module(), whose request comes back
// to lkmd while the first load still blocks a worker (docs/kernel.md, "Requests from a module's
// init"). A fixed-size pool would deadlock there; with up to 50 concurrent kernel requests,
// maxWorkers must exceed that.
class WorkerPool final : public JobRunner {
public:
    static std::unique_ptr<WorkerPool> create(sd_event *event, BackendFactory factory,
                                              unsigned maxWorkers, int *error);
    ~WorkerPool() override;  // waits for running jobs: never abandon an in-flight load

    void submit(Job job) override;

    unsigned workerCount() const;
    unsigned busyCount() const;

private:
    WorkerPool(BackendFactory factory, unsigned maxWorkers);
    void workerMain();
    void drainCompletions();
    static int onCompletionReady(sd_event_source *source, int fd, uint32_t revents, void *userdata);

    BackendFactory factory_;
    const unsigned maxWorkers_;
    static constexpr std::chrono::seconds kIdleExit{30};

    mutable std::mutex lock_;
    std::condition_variable wake_;
    std::deque<Job> jobs_;
    std::vector<Completion> completions_;
    std::vector<std::thread> threads_;
    std::vector<std::thread::id> exited_;
    unsigned idle_ = 0;
    unsigned busy_ = 0;
    bool stopping_ = false;

    UniqueFd eventFd_;
    EventSourcePtr eventSource_;
};

}  // namespace lkmd
