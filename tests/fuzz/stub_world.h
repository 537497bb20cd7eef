// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <memory>

#include "scheduler.h"

// A sysfs with one device that has a driver, made once per fuzzer process.
class StubSysfs {
public:
    StubSysfs() {
        char pattern[] = "/tmp/lkmd-fuzz-XXXXXX";
        root_ = mkdtemp(pattern);
        std::filesystem::create_directories(root_ / "sys/devices/pci0000:00/0000:00:03.0/driver");
        std::filesystem::create_directories(root_ / "proc");
    }
    const std::filesystem::path &root() const { return root_; }

private:
    std::filesystem::path root_;
};

// Jobs run when the fuzzer says, on its thread.
class InlineJobRunner final : public lkmd::JobRunner {
public:
    explicit InlineJobRunner(lkmd::ModuleBackend &backend) : backend_(backend) {}
    void submit(Job job) override { jobs_.push_back(std::move(job)); }
    void runAll() {
        while (!jobs_.empty()) {
            Job job = std::move(jobs_.front());
            jobs_.pop_front();
            if (Completion completion = job(backend_))
                completion();
        }
    }

private:
    lkmd::ModuleBackend &backend_;
    std::deque<Job> jobs_;
};

// Time stands still; no timer fires.
class FixedScheduler final : public lkmd::Scheduler {
public:
    std::uint64_t monotonicUsec() override { return 1; }
    std::uint64_t realtimeUsec() override { return 1; }
    std::unique_ptr<lkmd::Timer> timer(std::function<void()>) override {
        return std::make_unique<IdleTimer>();
    }

private:
    struct IdleTimer final : lkmd::Timer {
        void setAt(std::uint64_t usec) override { at_ = usec, armed_ = true; }
        void cancel() override { armed_ = false; }
        bool armed() const override { return armed_; }
        std::uint64_t at() const override { return at_; }
        std::uint64_t at_ = 0;
        bool armed_ = false;
    };
};
