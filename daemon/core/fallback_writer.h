// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <functional>

#include "fallback_compile.h"
#include "policy.h"
#include "scheduler.h"

namespace lkmd {

// Puts the policy where it must hold while lkmd does not answer (fallback_compile.h):
// RUNTIME_DIR/fallback-policy for lkmd-modprobe, MODPROBE_DIR/lkmd.conf for kmod. The module
// index is read and the files written by a job.
class FallbackWriter {
public:
    using IndexReader = std::function<int(ModuleIndex *index)>;

    FallbackWriter(JobRunner &runner, IndexReader readIndex, std::filesystem::path runtimeDir,
                   std::filesystem::path modprobeDir)
        : runner_(runner),
          readIndex_(std::move(readIndex)),
          runtimeDir_(std::move(runtimeDir)),
          modprobeDir_(std::move(modprobeDir)) {}

    // written (optional) runs on the loop once both files are written (or failed to be), so that
    // a reload is answered only when kmod sees the new policy too.
    void publish(const Policy &policy, std::function<void()> written = {});

private:
    JobRunner &runner_;
    IndexReader readIndex_;
    std::filesystem::path runtimeDir_;
    std::filesystem::path modprobeDir_;
};

}  // namespace lkmd
