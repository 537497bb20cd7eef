// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

#include "module_registry.h"
#include "scheduler.h"

namespace lkmd {

// Where the registry outlives lkmd: /run lives as long as the kernel. The loop thread stages each
// new state; writes happen on workers, whole and renamed into place (a crash leaves the old state
// or the new, never half), in order: an older state never overwrites a newer one.
class StateFile {
public:
    explicit StateFile(std::filesystem::path path) : path_(std::move(path)) {}

    // Remembers text as the newest state. True when no write is queued yet: then the caller
    // queues one (flush() writes whatever is newest by the time it runs).
    bool stage(std::string text);
    // Any thread: writes the newest staged state unless it is on disk already. 0 or -errno.
    int flush();
    // -ENOENT when there is no file.
    int read(std::string *text) const;
    const std::filesystem::path &path() const { return path_; }

private:
    const std::filesystem::path path_;
    std::mutex stagedLock_;
    std::string staged_;
    std::uint64_t stagedVersion_ = 0;
    bool flushQueued_ = false;
    std::mutex writeLock_;  // held across a write, so that renames happen in version order
    std::uint64_t writtenVersion_ = 0;
};

// Persists every change of registry through file, writing on runner's threads.
void persistRegistry(ModuleRegistry &registry, StateFile &file, JobRunner &runner);

struct RestoreCounts {
    std::size_t kept = 0;     // the same load is still there
    std::size_t adopted = 0;  // an insertion lkmd's death interrupted, and the module is there
    std::size_t dropped = 0;  // gone, or loaded again by someone else
    std::size_t skipped = 0;  // records the file should not have held
};

// Takes back the records a previous lkmd left in text. identityOf gives a module's current
// identity (0: not loaded). -EINVAL when text is not a state file of this version.
int restoreRegistry(std::string_view text,
                    const std::function<std::uint64_t(const std::string &)> &identityOf,
                    ModuleRegistry *registry, RestoreCounts *counts);

}  // namespace lkmd
