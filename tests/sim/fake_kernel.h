// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "fallback_compile.h"
#include "module_backend.h"
#include "scheduler.h"

namespace lkmd {

// A simulated kernel for tests of the daemon's own code without a real kernel (lkmd-sim, and
// unit tests). It is described by a "world" file, one statement per line:
//
//   module NAME [deps=A,B] [softdeps=C,D] [aliases=X,Y] [init_ms=N] [init_error=ENODEV]
//               [refcnt=N] [device=BUS:DRIVER:DEVICE]
//   builtin NAME [aliases=X,Y]
//   blacklist NAME
//   loaded NAME            (already in the kernel at start, loaded by someone else)
//
// and publishes its state where the real kernel would: PROCFS/modules and SYSFS/module/NAME, so
// the daemon reads it through the same code as the real thing.
class FakeKernel {
public:
    struct Module {
        std::vector<std::string> deps;
        std::vector<std::string> softdeps;  // "softdep NAME pre: ...": failures do not count
        std::vector<std::string> aliases;
        int initMs = 0;
        int initError = 0;                 // positive errno the module's init returns
        int refcnt = 0;                    // references beyond those of its holders
        std::vector<std::string> devices;  // "bus:driver:device", bound while loaded
    };

    // On a syntax error: nullptr, *error set and *detail naming the line.
    static std::shared_ptr<FakeKernel> load(const std::filesystem::path &world,
                                            std::filesystem::path procfs,
                                            std::filesystem::path sysfs, int *error,
                                            std::string *detail);

    int resolve(const std::string &request, std::vector<std::string> *modules);
    std::vector<std::string> hiddenByBlacklist(const std::string &request);
    ModuleState state(const std::string &module);
    int plan(const std::string &module, std::vector<PlanStep> *steps);
    // Blocks for the module's init_ms; a second insertion of a module in its init waits for
    // that init, as the kernel makes it.
    int insert(const PlanStep &step);
    int remove(const std::string &module);
    // The world's modules, aliases and dependencies, as depmod would index them.
    int index(ModuleIndex *index);

    // For tests that run jobs one by one on their own thread: the module enters its init now,
    // as if an insertion were inside finit_module(); the next insert() of it finishes that init.
    void holdInit(const std::string &module);
    // A module installed on disk after the index was read, as a package and depmod would: lookups
    // see it once someone reindexes.
    void installLater(const std::string &name, Module module);
    // Reads the index again; true when it changed since generation `since`.
    bool reindex(std::uint64_t since);
    std::uint64_t indexGeneration();

    // Called at the start of every insert(), with the module.
    void setInsertHook(std::function<void(const std::string &)> hook) {
        insertHook_ = std::move(hook);
    }

private:
    FakeKernel(std::filesystem::path procfs, std::filesystem::path sysfs);
    void planLocked(const std::string &module, bool required, std::vector<PlanStep> *plan) const;
    int refcntLocked(const std::string &module) const;
    void publishLocked();

    std::filesystem::path procfs_;
    std::filesystem::path sysfs_;
    std::mutex lock_;
    std::condition_variable changed_;
    std::map<std::string, Module> modules_;
    std::map<std::string, std::vector<std::string>> builtinAliases_;
    std::set<std::string> blacklist_;
    std::vector<std::string> loaded_;  // in load order, as /proc/modules lists them (newest first)
    std::set<std::string> coming_;
    std::set<std::string> held_;                // in coming_ by holdInit()
    std::map<std::string, Module> notIndexed_;  // installLater()
    std::uint64_t indexGeneration_ = 0;
    std::function<void(const std::string &)> insertHook_;
};

class FakeBackend final : public ModuleBackend {
public:
    explicit FakeBackend(std::shared_ptr<FakeKernel> kernel) : kernel_(std::move(kernel)) {}

    int resolve(const std::string &request, std::vector<std::string> *modules) override {
        return kernel_->resolve(request, modules);
    }
    std::vector<std::string> hiddenByBlacklist(const std::string &request) override {
        return kernel_->hiddenByBlacklist(request);
    }
    ModuleState state(const std::string &module) override { return kernel_->state(module); }
    int plan(const std::string &module, std::vector<PlanStep> *steps) override {
        return kernel_->plan(module, steps);
    }
    int insert(const PlanStep &step) override { return kernel_->insert(step); }
    int remove(const std::string &module) override { return kernel_->remove(module); }
    // Like KmodBackend: a look at the disk is a job's when this instance serves the loop.
    void recheck(std::function<void(bool changed)> done) override {
        const std::uint64_t since = kernel_->indexGeneration();
        if (runner_ == nullptr) {
            done(kernel_->reindex(since));
            return;
        }
        runner_->submit([kernel = kernel_, since, done = std::move(done)](ModuleBackend &) {
            const bool changed = kernel->reindex(since);
            return JobRunner::Completion([done, changed] { done(changed); });
        });
    }
    void serveLoop(JobRunner &runner) override { runner_ = &runner; }

private:
    std::shared_ptr<FakeKernel> kernel_;
    JobRunner *runner_ = nullptr;
};

}  // namespace lkmd
