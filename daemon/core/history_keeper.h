// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "load_history.h"
#include "scheduler.h"
#include "state_file.h"

namespace lkmd {

// The load history and its file (STATE_DIR/history). A new entry is written at once, off the
// loop; counts and times of known entries at most once a minute and at stop: a busy host's
// requests never turn into a write each. Nothing here ever stops lkmd from serving: a file it
// cannot read starts an empty history, one it cannot write is tried again at the next change.
class HistoryKeeper {
public:
    static constexpr std::uint64_t kCoalesceUsec = 60ULL * 1000 * 1000;

    HistoryKeeper(std::filesystem::path path, JobRunner &runner, Scheduler &scheduler);

    // Takes back the file a previous lkmd wrote. Empty, or a sentence for the log: a file that is
    // not a history (then the history starts empty), lines that were skipped.
    std::string restore();
    void note(const RequestRecord &record);
    // On the loop, at stop: writes what changed since the last write, now. 0 or -errno.
    int flush();

    const LoadHistory &history() const { return history_; }
    const std::filesystem::path &path() const { return file_.path(); }

private:
    void write();

    LoadHistory history_;
    StateFile file_;
    JobRunner &runner_;
    std::unique_ptr<Timer> timer_;  // armed while counts wait for their write
    Scheduler &scheduler_;
    bool dirty_ = false;
    bool warned_ = false;  // one warning per run of failures, not one per request
};

}  // namespace lkmd
