// SPDX-License-Identifier: LGPL-2.1-or-later
#include "history_keeper.h"

#include <cerrno>
#include <cstring>

#include "log.h"

namespace lkmd {

HistoryKeeper::HistoryKeeper(std::filesystem::path path, JobRunner &runner, Scheduler &scheduler)
    : file_(std::move(path)), runner_(runner), scheduler_(scheduler) {
    timer_ = scheduler_.timer([this] { write(); });
}

std::string HistoryKeeper::restore() {
    std::string text;
    const int r = file_.read(&text);
    if (r == -ENOENT)
        return {};
    if (r < 0)
        return "Could not read '" + file_.path().string() + "': " + std::strerror(-r) +
               ", starting an empty history";
    LoadHistory restored;
    std::size_t skipped = 0;
    if (LoadHistory::parse(text, &restored, &skipped) < 0)
        return "Ignoring '" + file_.path().string() +
               "': not a load history of this version, starting an empty one";
    history_ = std::move(restored);
    if (skipped != 0)
        return "Skipped " + std::to_string(skipped) + " invalid lines of '" +
               file_.path().string() + "'";
    return {};
}

void HistoryKeeper::note(const RequestRecord &record) {
    const std::uint64_t before = history_.changes();
    if (history_.note(record)) {
        write();
        return;
    }
    if (history_.changes() == before)
        return;  // a request refused or failed: not kept
    dirty_ = true;
    if (!timer_->armed())
        timer_->setAt(scheduler_.monotonicUsec() + kCoalesceUsec);
}

void HistoryKeeper::write() {
    timer_->cancel();
    dirty_ = false;
    if (!file_.stage(history_.serialize()))
        return;  // a write is queued: it takes what was staged last
    runner_.submit([this](ModuleBackend &) -> JobRunner::Completion {
        const int r = file_.flush();
        return [this, r] {
            if (r < 0 && !warned_)
                logger("lkmd")->warn("Could not write '{}': {}, will retry on the next change",
                                     file_.path().string(), std::strerror(-r));
            warned_ = r < 0;
        };
    });
}

int HistoryKeeper::flush() {
    timer_->cancel();
    if (dirty_) {
        dirty_ = false;
        file_.stage(history_.serialize());
    }
    return file_.flush();
}

}  // namespace lkmd
