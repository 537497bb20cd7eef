// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "module_backend.h"

namespace lkmd {

// A simulated kernel for tests of the real daemon without a real kernel (lkmd --fake-kernel).
// It is described by a "world" file, one statement per line:
//
//   module NAME [deps=A,B] [aliases=X,Y] [init_ms=N] [init_error=ENODEV] [refcnt=N]
//               [device=BUS:DRIVER:DEVICE]
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
    ModuleState state(const std::string &module);
    int insert(const std::string &module, const InsertControl &control,
               std::vector<std::string> *inserted, std::string *failed);
    int remove(const std::string &module);

private:
    FakeKernel(std::filesystem::path procfs, std::filesystem::path sysfs);
    void planLocked(const std::string &module, std::vector<std::string> *plan) const;
    int insertOneLocked(std::unique_lock<std::mutex> &guard, const std::string &module,
                        std::vector<std::string> *inserted);
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
};

class FakeBackend final : public ModuleBackend {
public:
    explicit FakeBackend(std::shared_ptr<FakeKernel> kernel) : kernel_(std::move(kernel)) {}

    int resolve(const std::string &request, std::vector<std::string> *modules) override {
        return kernel_->resolve(request, modules);
    }
    ModuleState state(const std::string &module) override { return kernel_->state(module); }
    int insert(const std::string &module, const InsertControl &control,
               std::vector<std::string> *inserted, std::string *failed) override {
        return kernel_->insert(module, control, inserted, failed);
    }
    int remove(const std::string &module) override { return kernel_->remove(module); }

private:
    std::shared_ptr<FakeKernel> kernel_;
};

}  // namespace lkmd
