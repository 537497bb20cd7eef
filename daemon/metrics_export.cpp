// SPDX-License-Identifier: LGPL-2.1-or-later
#include "metrics_export.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "atomic_file.h"
#include "log.h"

namespace lkmd {

std::uint64_t readFallbackCount(const std::filesystem::path &path) {
    std::ifstream in(path);
    std::string text;
    if (!in || !std::getline(in, text))
        return 0;
    std::uint64_t count = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
    return ec == std::errc() ? count : 0;
}

MetricsExport::MetricsExport(Metrics &metrics, Scheduler &scheduler, JobRunner &runner,
                             std::filesystem::path textfileDir,
                             std::filesystem::path fallbackCounter, std::function<void()> announce)
    : metrics_(metrics),
      scheduler_(scheduler),
      runner_(runner),
      textfileDir_(std::move(textfileDir)),
      fallbackCounter_(std::move(fallbackCounter)),
      announce_(std::move(announce)),
      timer_(scheduler.timer([this] { publish(); })) {
    metrics_.setChangeHandler([this] { schedule(); });
}

void MetricsExport::schedule() {
    if (!timer_->armed())
        timer_->setAt(scheduler_.monotonicUsec() + kPeriodUsec);
}

void MetricsExport::publish() {
    runner_.submit([this, counter = fallbackCounter_](ModuleBackend &) -> JobRunner::Completion {
        const std::uint64_t fallbacks = readFallbackCount(counter);
        return [this, fallbacks] {
            metrics_.setHelperFallbacks(fallbacks);
            if (announce_)
                announce_();
            std::error_code ec;
            if (textfileDir_.empty() || !std::filesystem::is_directory(textfileDir_, ec))
                return;
            runner_.submit([dir = textfileDir_, text = metrics_.exposition()](
                               ModuleBackend &) -> JobRunner::Completion {
                if (const int r = writeFileAtomically(dir / "lkmd.prom", text); r < 0)
                    logger("lkmd")->warn("Could not write '{}': {}, will retry",
                                         (dir / "lkmd.prom").string(), std::strerror(-r));
                return {};
            });
        };
    });
}

}  // namespace lkmd
