// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "module_registry.h"
#include "request_log.h"

namespace lkmd {

// A Prometheus histogram of durations, buckets in seconds.
class Histogram {
public:
    static constexpr std::array<double, 11> kBuckets = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                                        0.1,    0.5,    1,     5,     10};
    void observe(std::uint64_t usec);
    // name_bucket{le="..."}, name_sum, name_count, with extra labels.
    void appendSeries(const std::string &name, const std::string &labels,
                      std::vector<std::pair<std::string, double>> *series) const;

private:
    std::array<std::uint64_t, kBuckets.size()> counts_{};
    std::uint64_t count_ = 0;
    double sumSeconds_ = 0;
};

// lkmd's counters and latency histograms, for existing monitoring: the D-Bus property Metrics
// and the text format of Prometheus (node-exporter's textfile collector reads it). Updated on
// the loop; every change is announced, and the exporter decides how often to publish.
class Metrics {
public:
    void setChangeHandler(std::function<void()> handler) { changed_ = std::move(handler); }

    void countRequest(const RequestRecord &request);
    void observeResolve(std::uint64_t usec);
    void countInsertion(Origin origin, std::uint64_t usec);
    void countUnload(const std::string &reason);
    void setHelperFallbacks(std::uint64_t count);
    void setAutocleanCandidates(std::size_t count);

    // Every series by its Prometheus name with labels:
    // lkmd_requests_total{origin="kernel",result="loaded"} 3.
    std::vector<std::pair<std::string, double>> series() const;
    // The exposition text, with HELP and TYPE lines.
    std::string exposition() const;

private:
    void changed() {
        if (changed_)
            changed_();
    }

    std::map<std::pair<std::string, std::string>, std::uint64_t> requests_;  // origin, result
    std::map<std::string, std::uint64_t> insertions_;                        // origin
    std::map<std::string, std::uint64_t> unloads_;                           // reason
    std::uint64_t refusals_ = 0;
    std::uint64_t helperFallbacks_ = 0;
    std::size_t autocleanCandidates_ = 0;
    Histogram requestSeconds_;
    Histogram resolveSeconds_;
    Histogram insertSeconds_;
    std::function<void()> changed_;
};

}  // namespace lkmd
