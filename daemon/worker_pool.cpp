// SPDX-License-Identifier: LGPL-2.1-or-later
#include "worker_pool.h"

#include <malloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "log.h"

namespace lkmd {
namespace {

// A worker's own libkmod context, opened by the first job that uses it: many jobs never do (the
// coldplug walk of sysfs, file writes), and opening one reads the module indexes and
// modprobe.d, which at boot, beside everything else starting, costs a job a second. A context
// that cannot be opened answers every call with -ENOMEM, so that queued jobs still get an
// answer.
class LazyBackend final : public ModuleBackend {
public:
    explicit LazyBackend(const BackendFactory &factory) : factory_(factory) {}

    int resolve(const std::string &request, std::vector<std::string> *modules) override {
        return open() ? backend_->resolve(request, modules) : -ENOMEM;
    }
    std::vector<std::string> hiddenByBlacklist(const std::string &request) override {
        return open() ? backend_->hiddenByBlacklist(request) : std::vector<std::string>{};
    }
    ModuleState state(const std::string &module) override {
        return open() ? backend_->state(module) : ModuleState::Absent;
    }
    int plan(const std::string &module, std::vector<PlanStep> *steps) override {
        return open() ? backend_->plan(module, steps) : -ENOMEM;
    }
    int insert(const PlanStep &step) override { return open() ? backend_->insert(step) : -ENOMEM; }
    int remove(const std::string &module) override {
        return open() ? backend_->remove(module) : -ENOMEM;
    }

private:
    bool open() {
        if (!tried_) {
            tried_ = true;
            backend_ = factory_();
            if (!backend_)
                logger("lkmd")->error(
                    "A worker could not open the module index; its jobs will fail");
        }
        return backend_ != nullptr;
    }

    const BackendFactory &factory_;
    std::unique_ptr<ModuleBackend> backend_;
    bool tried_ = false;
};

}  // namespace

std::unique_ptr<WorkerPool> WorkerPool::create(sd_event *event, BackendFactory factory,
                                               unsigned maxWorkers, int *error) {
    std::unique_ptr<WorkerPool> pool(new WorkerPool(std::move(factory), maxWorkers));
    pool->eventFd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!pool->eventFd_.valid()) {
        *error = -errno;
        return nullptr;
    }
    sd_event_source *source = nullptr;
    *error = sd_event_add_io(event, &source, pool->eventFd_.get(), EPOLLIN, onCompletionReady,
                             pool.get());
    if (*error < 0)
        return nullptr;
    pool->eventSource_.reset(source);
    return pool;
}

WorkerPool::WorkerPool(BackendFactory factory, unsigned maxWorkers)
    : factory_(std::move(factory)), maxWorkers_(std::max(1u, maxWorkers)) {}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard guard(lock_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread &thread : threads_)
        thread.join();
    eventSource_.reset();
}

void WorkerPool::submit(Job job) {
    std::unique_lock guard(lock_);
    jobs_.push_back(std::move(job));

    // Workers that retired after idling; their std::thread objects are still here. Joined below,
    // outside the lock: one may still be giving its memory back (malloc_trim).
    std::vector<std::thread> retired;
    for (const std::thread::id id : exited_) {
        auto it = std::find_if(threads_.begin(), threads_.end(),
                               [id](const std::thread &t) { return t.get_id() == id; });
        if (it != threads_.end()) {
            retired.push_back(std::move(*it));
            threads_.erase(it);
        }
    }
    exited_.clear();
    const auto joinRetired = [&retired] {
        for (std::thread &thread : retired)
            thread.join();
    };

    if (idle_ >= jobs_.size() || threads_.size() >= maxWorkers_) {
        guard.unlock();
        wake_.notify_one();
        joinRetired();
        return;
    }
    try {
        threads_.emplace_back([this] { workerMain(); });
    } catch (const std::system_error &e) {
        // The job stays queued for a worker that frees up.
        logger("lkmd")->warn("Could not start a worker thread: {}, will queue", e.what());
    }
    guard.unlock();
    joinRetired();
}

unsigned WorkerPool::workerCount() const {
    std::lock_guard guard(lock_);
    return threads_.size() - exited_.size();
}

unsigned WorkerPool::busyCount() const {
    std::lock_guard guard(lock_);
    return busy_;
}

void WorkerPool::workerMain() {
    auto backend = std::make_unique<LazyBackend>(factory_);
    std::unique_lock guard(lock_);
    for (;;) {
        ++idle_;
        const bool woken =
            wake_.wait_for(guard, kIdleExit, [this] { return stopping_ || !jobs_.empty(); });
        --idle_;
        if (!woken || (stopping_ && jobs_.empty())) {
            if (stopping_)
                return;
            exited_.push_back(std::this_thread::get_id());
            guard.unlock();
            backend.reset();
            // Work done, lkmd at rest: what the jobs freed (module indexes, coldplug's and the
            // policy compile's buffers) goes back to the kernel rather than staying in the
            // arenas for as long as lkmd runs.
            malloc_trim(0);
            return;
        }
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
        guard.unlock();

        Completion completion = job(*backend);

        guard.lock();
        --busy_;
        if (completion) {
            completions_.push_back(std::move(completion));
            const std::uint64_t one = 1;
            [[maybe_unused]] ssize_t n = write(eventFd_.get(), &one, sizeof(one));
        }
    }
}

void WorkerPool::drainCompletions() {
    std::uint64_t count;
    [[maybe_unused]] ssize_t n = read(eventFd_.get(), &count, sizeof(count));
    std::vector<Completion> ready;
    {
        std::lock_guard guard(lock_);
        ready.swap(completions_);
    }
    for (Completion &completion : ready)
        completion();
}

int WorkerPool::onCompletionReady(sd_event_source * /*source*/, int /*fd*/, uint32_t /*revents*/,
                                  void *userdata) {
    static_cast<WorkerPool *>(userdata)->drainCompletions();
    return 0;
}

}  // namespace lkmd
