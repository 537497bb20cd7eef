// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "metrics.h"
#include "scheduler.h"

namespace lkmd {

// Publishes lkmd's metrics at most once a second after a change: to the bus (PropertiesChanged
// of Metrics, through the callback) and, when node-exporter's textfile directory exists, as
// DIR/lkmd.prom in Prometheus's text format, written whole and renamed into place by a job, so
// that a fleet's existing Prometheus scrapes lkmd with no server of its own. Also reads the
// count of requests lkmd-modprobe passed to kmod, which the helper keeps next to the socket.
class MetricsExport {
public:
    static constexpr std::uint64_t kPeriodUsec = 1'000'000;

    MetricsExport(Metrics &metrics, Scheduler &scheduler, JobRunner &runner,
                  std::filesystem::path textfileDir, std::filesystem::path fallbackCounter,
                  std::function<void()> announce);

    // Publish soon (after a change).
    void schedule();

private:
    void publish();

    Metrics &metrics_;
    Scheduler &scheduler_;
    JobRunner &runner_;
    std::filesystem::path textfileDir_;
    std::filesystem::path fallbackCounter_;
    std::function<void()> announce_;
    std::unique_ptr<Timer> timer_;
};

// The count lkmd-modprobe keeps in PATH (a decimal number); 0 when there is none.
std::uint64_t readFallbackCount(const std::filesystem::path &path);

}  // namespace lkmd
