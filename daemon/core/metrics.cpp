// SPDX-License-Identifier: LGPL-2.1-or-later
#include "metrics.h"

#include <cerrno>
#include <cstdio>

namespace lkmd {
namespace {

std::string number(double value) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.17g", value);
    return text;
}

std::string bucketBound(double seconds) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", seconds);
    return text;
}

struct Family {
    const char *name;
    const char *type;
    const char *help;
};

constexpr Family kFamilies[] = {
    {"lkmd_requests_total", "counter", "Load requests lkmd answered, by origin and result."},
    {"lkmd_refusals_total", "counter", "Load requests refused by policy."},
    {"lkmd_insertions_total", "counter", "Modules lkmd inserted, by the origin of the load."},
    {"lkmd_unloads_total", "counter", "Modules lkmd removed, by reason (idle or request)."},
    {"lkmd_helper_fallbacks_total", "counter",
     "Kernel requests lkmd-modprobe passed to kmod's modprobe because lkmd did not answer."},
    {"lkmd_autoclean_candidates", "gauge",
     "Modules lkmd loaded on demand that it may unload once idle."},
    {"lkmd_request_duration_seconds", "histogram", "Time from a request to its answer."},
    {"lkmd_resolve_duration_seconds", "histogram",
     "Time to resolve a request to modules and plan their loads."},
    {"lkmd_insert_duration_seconds", "histogram", "Time of one module insertion, init included."},
};

}  // namespace

void Histogram::observe(std::uint64_t usec) {
    const double seconds = static_cast<double>(usec) / 1e6;
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
        if (seconds <= kBuckets[i])
            ++counts_[i];
    ++count_;
    sumSeconds_ += seconds;
}

void Histogram::appendSeries(const std::string &name, const std::string &labels,
                             std::vector<std::pair<std::string, double>> *series) const {
    const std::string prefix = labels.empty() ? "" : labels + ",";
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
        series->emplace_back(
            name + "_bucket{" + prefix + "le=\"" + bucketBound(kBuckets[i]) + "\"}",
            static_cast<double>(counts_[i]));
    series->emplace_back(name + "_bucket{" + prefix + "le=\"+Inf\"}", static_cast<double>(count_));
    const std::string plain = labels.empty() ? "" : "{" + labels + "}";
    series->emplace_back(name + "_sum" + plain, sumSeconds_);
    series->emplace_back(name + "_count" + plain, static_cast<double>(count_));
}

void Metrics::countRequest(const RequestRecord &request) {
    ++requests_[{originName(request.origin), request.result()}];
    if (request.error == -EACCES)
        ++refusals_;
    requestSeconds_.observe(request.durationUsec);
    changed();
}

void Metrics::observeResolve(std::uint64_t usec) {
    resolveSeconds_.observe(usec);
}

void Metrics::countInsertion(Origin origin, std::uint64_t usec) {
    ++insertions_[originName(origin)];
    insertSeconds_.observe(usec);
    changed();
}

void Metrics::countUnload(const std::string &reason) {
    ++unloads_[reason];
    changed();
}

void Metrics::setHelperFallbacks(std::uint64_t count) {
    if (helperFallbacks_ == count)
        return;
    helperFallbacks_ = count;
    changed();
}

void Metrics::setAutocleanCandidates(std::size_t count) {
    if (autocleanCandidates_ == count)
        return;
    autocleanCandidates_ = count;
    changed();
}

std::vector<std::pair<std::string, double>> Metrics::series() const {
    std::vector<std::pair<std::string, double>> out;
    for (const auto &[key, count] : requests_)
        out.emplace_back(
            "lkmd_requests_total{origin=\"" + key.first + "\",result=\"" + key.second + "\"}",
            static_cast<double>(count));
    out.emplace_back("lkmd_refusals_total", static_cast<double>(refusals_));
    for (const auto &[origin, count] : insertions_)
        out.emplace_back("lkmd_insertions_total{origin=\"" + origin + "\"}",
                         static_cast<double>(count));
    for (const auto &[reason, count] : unloads_)
        out.emplace_back("lkmd_unloads_total{reason=\"" + reason + "\"}",
                         static_cast<double>(count));
    out.emplace_back("lkmd_helper_fallbacks_total", static_cast<double>(helperFallbacks_));
    out.emplace_back("lkmd_autoclean_candidates", static_cast<double>(autocleanCandidates_));
    requestSeconds_.appendSeries("lkmd_request_duration_seconds", "", &out);
    resolveSeconds_.appendSeries("lkmd_resolve_duration_seconds", "", &out);
    insertSeconds_.appendSeries("lkmd_insert_duration_seconds", "", &out);
    return out;
}

std::string Metrics::exposition() const {
    const std::vector<std::pair<std::string, double>> all = series();
    std::string text;
    for (const Family &family : kFamilies) {
        text += std::string("# HELP ") + family.name + " " + family.help + "\n";
        text += std::string("# TYPE ") + family.name + " " + family.type + "\n";
        const std::string name = family.name;
        for (const auto &[series, value] : all) {
            const std::string base = series.substr(0, series.find('{'));
            const bool ours = base == name || base == name + "_bucket" || base == name + "_sum" ||
                              base == name + "_count";
            if (ours)
                text += series + " " + number(value) + "\n";
        }
    }
    return text;
}

}  // namespace lkmd
