// SPDX-License-Identifier: LGPL-2.1-or-later
#include "module_request_trace.h"

#include <algorithm>
#include <charconv>

namespace lkmd {
namespace {

constexpr std::string_view kEvent = ": module_request: ";

template <typename Number>
bool parseNumber(std::string_view text, Number *value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

std::string_view trimmed(std::string_view text) {
    const std::size_t first = text.find_first_not_of(' ');
    if (first == std::string_view::npos)
        return {};
    return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// "1234.567890" in seconds.
bool parseTimestamp(std::string_view text, std::uint64_t *usec) {
    const std::size_t dot = text.find('.');
    std::uint64_t seconds = 0;
    std::uint64_t fraction = 0;
    if (dot == std::string_view::npos || !parseNumber(text.substr(0, dot), &seconds))
        return false;
    std::string_view digits = text.substr(dot + 1);
    if (digits.empty() || digits.size() > 9 || !parseNumber(digits, &fraction))
        return false;
    for (std::size_t i = digits.size(); i < 6; ++i)
        fraction *= 10;
    for (std::size_t i = digits.size(); i > 6; --i)
        fraction /= 10;
    *usec = seconds * 1'000'000 + fraction;
    return true;
}

}  // namespace

std::optional<TraceRecord> parseModuleRequestTrace(std::string_view line) {
    if (!line.empty() && line.back() == '\n')
        line.remove_suffix(1);
    // The comm is at most 15 bytes: the first occurrence of the event marker is the real one.
    const std::size_t event = line.find(kEvent);
    if (event == std::string_view::npos)
        return std::nullopt;
    const std::string_view header = line.substr(0, event);
    std::string_view fields = line.substr(event + kEvent.size());

    TraceRecord record;
    // The name may hold anything: the fixed fields are taken from the end.
    const std::size_t callSite = fields.rfind(" call_site=");
    if (callSite == std::string_view::npos)
        return std::nullopt;
    // "alg_bind+0x5c/0x1a0 [af_alg]": the function, and the module it is in, if any.
    const std::string_view symbol = fields.substr(callSite + 11);
    const std::size_t module = symbol.find(" [");
    record.callSite = std::string(symbol.substr(0, std::min(symbol.find('+'), module)));
    if (module != std::string_view::npos)
        record.callSite += symbol.substr(module);
    fields = fields.substr(0, callSite);
    const std::size_t wait = fields.rfind(" wait=");
    if (wait == std::string_view::npos)
        return std::nullopt;
    const std::string_view waitValue = fields.substr(wait + 6);
    if (waitValue != "0" && waitValue != "1")
        return std::nullopt;
    record.wait = waitValue == "1";
    record.name = std::string(fields.substr(0, wait));
    if (record.name.empty())
        return std::nullopt;

    // Header: "<comm>-<pid> [cpu] <flags> <timestamp>", the comm right-aligned; with the
    // record-tgid option a "(tgid)" follows the pid.
    const std::size_t lastSpace = header.rfind(' ');
    if (lastSpace == std::string_view::npos ||
        !parseTimestamp(header.substr(lastSpace + 1), &record.timestampUsec))
        return std::nullopt;
    const std::size_t cpu = header.rfind(" [");
    if (cpu == std::string_view::npos)
        return std::nullopt;
    std::string_view task = trimmed(header.substr(0, cpu));
    if (!task.empty() && task.back() == ')') {
        const std::size_t open = task.rfind('(');
        if (open == std::string_view::npos)
            return std::nullopt;
        task = trimmed(task.substr(0, open));
    }
    const std::size_t dash = task.rfind('-');
    if (dash == std::string_view::npos || !parseNumber(task.substr(dash + 1), &record.pid) ||
        record.pid <= 0)
        return std::nullopt;
    record.comm = std::string(task.substr(0, dash));
    return record;
}

}  // namespace lkmd
