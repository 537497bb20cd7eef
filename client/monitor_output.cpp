// SPDX-License-Identifier: LGPL-2.1-or-later
#include "monitor_output.h"

#include <time.h>

#include <array>

#include "output.h"
#include "terminal.h"
#include "text.h"
#include "time_format.h"

namespace lkmd::client {
namespace {

// journalctl's short format: "May 02 10:00:00" in local time.
std::string shortTime(std::uint64_t realtimeUsec) {
    const auto seconds = static_cast<time_t>(realtimeUsec / 1000000);
    struct tm tm = {};
    std::array<char, 32> buffer;
    if (localtime_r(&seconds, &tm) == nullptr)
        return "-";
    const std::size_t length = strftime(buffer.data(), buffer.size(), "%b %d %H:%M:%S", &tm);
    return length == 0 ? "-" : std::string(buffer.data(), length);
}

std::string requestText(const RequestInfo &request) {
    std::string text = "request " + escapeForTerminal(request.request) + " from " +
                       escapeForTerminal(request.origin);
    if (!request.device.empty())
        text += " (" + escapeForTerminal(request.device) + ")";
    text += ": " + escapeForTerminal(request.result);
    std::string modules;
    for (const std::string &module : request.modules)
        modules += (modules.empty() ? " " : ", ") + escapeForTerminal(module);
    text += modules + " in " + formatElapsed(request.durationUsec);
    if (!request.message.empty())
        text += ": " + escapeForTerminal(request.message);
    return text;
}

const char *kindName(MonitorEvent::Kind kind) {
    switch (kind) {
        case MonitorEvent::Kind::Request:
            return "request";
        case MonitorEvent::Kind::Loaded:
            return "loaded";
        case MonitorEvent::Kind::Unloaded:
            return "unloaded";
        case MonitorEvent::Kind::Started:
            return "started";
        case MonitorEvent::Kind::Stopped:
            return "stopped";
    }
    return "";
}

}  // namespace

std::string formatMonitorLine(const MonitorEvent &event, bool colors) {
    std::string text;
    Color color = Color::None;
    switch (event.kind) {
        case MonitorEvent::Kind::Request:
            text = requestText(event.request);
            color = resultColor(event.request.result);
            break;
        case MonitorEvent::Kind::Loaded:
            text = "loaded " + escapeForTerminal(event.module) + " (" +
                   escapeForTerminal(event.origin) + ")";
            break;
        case MonitorEvent::Kind::Unloaded:
            text = "unloaded " + escapeForTerminal(event.module) + " (" +
                   escapeForTerminal(event.reason) + ")";
            break;
        case MonitorEvent::Kind::Started:
            text = "lkmd is on the bus";
            color = Color::Grey;
            break;
        case MonitorEvent::Kind::Stopped:
            text = "lkmd left the bus";
            color = Color::Grey;
            break;
    }
    return shortTime(event.timeUsec) + " " + colored(text, color, colors) + "\n";
}

nlohmann::ordered_json monitorEventJson(const MonitorEvent &event) {
    nlohmann::ordered_json object = {
        {"event", kindName(event.kind)},
        {"time", isoTimeJson(event.timeUsec)},
        {"time_usec", event.timeUsec},
    };
    switch (event.kind) {
        case MonitorEvent::Kind::Request: {
            // The request's own time is when it arrived; the event's when it was answered.
            const nlohmann::ordered_json request = requestJson(event.request);
            for (const auto &[key, value] : request.items())
                object[key == "time"        ? "arrived_at"
                       : key == "time_usec" ? "arrived_at_usec"
                                            : key] = value;
            break;
        }
        case MonitorEvent::Kind::Loaded:
            object["module"] = event.module;
            object["origin"] = event.origin;
            break;
        case MonitorEvent::Kind::Unloaded:
            object["module"] = event.module;
            object["reason"] = event.reason;
            break;
        case MonitorEvent::Kind::Started:
        case MonitorEvent::Kind::Stopped:
            break;
    }
    return object;
}

}  // namespace lkmd::client
