// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "fake_backend.h"
#include "kernel_state.h"
#include "sd_ptr.h"
#include "temp_dir.h"
#include "worker_pool.h"

// What a test of lkmd's core needs around a Manager: a simulated kernel described by a world
// file (see fake_backend.h), publishing into a temp dir, a real sd-event loop and a real worker
// pool. Call start() from SetUp() inside ASSERT_NO_FATAL_FAILURE.
struct FakeWorld {
    void start(const std::string &world, unsigned workers) {
        std::ofstream(dir.path() / "world") << world;
        int error = 0;
        std::string detail;
        kernel = lkmd::FakeKernel::load(dir.path() / "world", dir.path() / "proc",
                                        dir.path() / "sys", &error, &detail);
        ASSERT_TRUE(kernel) << detail;
        sd_event *raw = nullptr;
        ASSERT_GE(sd_event_new(&raw), 0);
        event.reset(raw);
        auto factory = [fake = kernel] { return std::make_unique<lkmd::FakeBackend>(fake); };
        loopBackend = factory();
        pool = lkmd::WorkerPool::create(event.get(), factory, workers, &error);
        ASSERT_TRUE(pool);
        state = std::make_unique<lkmd::KernelState>(dir.path() / "proc", dir.path() / "sys");
    }

    TempDir dir;
    std::shared_ptr<lkmd::FakeKernel> kernel;
    lkmd::EventPtr event;
    std::unique_ptr<lkmd::ModuleBackend> loopBackend;
    std::unique_ptr<lkmd::WorkerPool> pool;
    std::unique_ptr<lkmd::KernelState> state;
};
