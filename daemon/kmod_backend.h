// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "module_backend.h"

struct kmod_ctx;

namespace lkmd {

// libkmod with one long-lived context, re-created when depmod rewrites the index.
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

private:
    explicit KmodBackend(std::filesystem::path moduleDir);
    int openContext();
    // True when it reloaded. Rate-limited to once a second unless forced.
    bool refreshIfStale(bool force);
    // Whether the module's install command is the one lkmd's modprobe.d file gives it.
    bool isOwnRefusal(const std::string &module);
    int resolveOnce(const std::string &request, std::vector<std::string> *modules, bool retried);
    int runInstallCommand(const PlanStep &step);
    static std::string configFingerprint();

    std::filesystem::path moduleDir_;
    kmod_ctx *ctx_ = nullptr;
    std::string configFingerprint_;
    std::chrono::steady_clock::time_point configCheckedAt_;
};

}  // namespace lkmd
