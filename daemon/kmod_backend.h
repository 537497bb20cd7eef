// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "module_backend.h"

struct kmod_ctx;

namespace lkmd {

// libkmod with one long-lived context, re-created when depmod rewrites the index or modprobe.d
// changes. On a worker it looks (at most once a second, and again before a lookup says "no
// such module") inline; on the loop (serveLoop()) from jobs, and adopts the context they load.
class KmodBackend final : public ModuleBackend {
public:
    static std::unique_ptr<KmodBackend> create(const std::filesystem::path &moduleDir, int *error);
    ~KmodBackend() override;

    int resolve(const std::string &request, std::vector<std::string> *modules) override;
    std::vector<std::string> hiddenByBlacklist(const std::string &request) override;
    ModuleState state(const std::string &module) override;
    int plan(const std::string &module, std::vector<PlanStep> *steps) override;
    int insert(const PlanStep &step) override;
    int remove(const std::string &module) override;
    void recheck(std::function<void(bool changed)> done) override;
    void serveLoop(JobRunner &runner) override;

private:
    struct Waiter {
        std::uint64_t generation;  // of the context whose lookup found nothing
        std::function<void(bool changed)> done;
    };

    explicit KmodBackend(std::filesystem::path moduleDir);
    static kmod_ctx *openContext(const std::filesystem::path &moduleDir, int *error);
    static std::string fingerprintOf(const std::filesystem::path &moduleDir);
    // True when it reloaded. Rate-limited to once a second unless forced.
    bool refreshIfStale(bool force);
    // Whether the module's install command is the one lkmd's modprobe.d file gives it.
    bool isOwnRefusal(const std::string &module);
    void adopt(kmod_ctx *fresh, std::string fingerprint);
    void startCheck();
    void checkDone(kmod_ctx *fresh, std::string fingerprint);
    int resolveOnce(const std::string &request, std::vector<std::string> *modules, bool retried);
    int runInstallCommand(const PlanStep &step);

    std::filesystem::path moduleDir_;
    kmod_ctx *ctx_ = nullptr;
    std::string fingerprint_;
    std::uint64_t generation_ = 0;
    std::uint64_t seenReloads_ = 0;  // of indexReloads (kmod_backend.cpp) when last looked
    std::chrono::steady_clock::time_point checkedAt_;
    JobRunner *runner_ = nullptr;
    bool checking_ = false;
    std::vector<Waiter> waiting_;  // answered by the check in flight
    std::vector<Waiter> next_;     // arrived during it: answered by the next one
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // checked by job completions
};

}  // namespace lkmd
