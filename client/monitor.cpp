// SPDX-License-Identifier: LGPL-2.1-or-later
#include "monitor.h"

#include <signal.h>
#include <time.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "bus_failure.h"
#include "bus_handles.h"
#include "bus_names.h"
#include "bus_reader.h"
#include "monitor_output.h"
#include "output.h"

namespace lkmd::client {
namespace {

volatile std::sig_atomic_t stopRequested = 0;

void onStopSignal(int) {
    stopRequested = 1;
}

std::uint64_t realtimeNowUsec() {
    struct timespec ts = {};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

struct Monitor {
    JsonMode json;
    bool colors;

    void print(const MonitorEvent &event) const {
        const std::string text = json == JsonMode::Off
                                     ? formatMonitorLine(event, colors)
                                     : dumpJson(monitorEventJson(event), JsonMode::Short);
        std::fputs(text.c_str(), stdout);
        // Each event as it comes, also into a pipe or a file.
        std::fflush(stdout);
    }
};

// The one signal handler: which of lkmd's signals, or NameOwnerChanged for org.lkmd1.
int onSignal(sd_bus_message *message, void *userdata, sd_bus_error *) {
    const auto *monitor = static_cast<const Monitor *>(userdata);
    MonitorEvent event;
    event.timeUsec = realtimeNowUsec();
    int r = 0;
    if (sd_bus_message_is_signal(message, bus::kManagerInterface, "RequestAnswered")) {
        PropertyMap properties;
        event.kind = MonitorEvent::Kind::Request;
        r = readPropertyMap(message, properties);
        event.request = requestInfoFromProperties(properties);
    } else if (sd_bus_message_is_signal(message, bus::kManagerInterface, "ModuleLoaded")) {
        const char *module = nullptr;
        const char *origin = nullptr;
        event.kind = MonitorEvent::Kind::Loaded;
        r = sd_bus_message_read(message, "ss", &module, &origin);
        if (r >= 0) {
            event.module = module;
            event.origin = origin;
        }
    } else if (sd_bus_message_is_signal(message, bus::kManagerInterface, "ModuleUnloaded")) {
        const char *module = nullptr;
        const char *reason = nullptr;
        event.kind = MonitorEvent::Kind::Unloaded;
        r = sd_bus_message_read(message, "ss", &module, &reason);
        if (r >= 0) {
            event.module = module;
            event.reason = reason;
        }
    } else if (sd_bus_message_is_signal(message, "org.freedesktop.DBus", "NameOwnerChanged")) {
        const char *name = nullptr;
        const char *before = nullptr;
        const char *after = nullptr;
        r = sd_bus_message_read(message, "sss", &name, &before, &after);
        if (r < 0 || std::strcmp(name, bus::kServiceName) != 0)
            return 0;
        event.kind = after[0] != '\0' ? MonitorEvent::Kind::Started : MonitorEvent::Kind::Stopped;
    } else {
        return 0;  // a signal lkmd added after this lkmctl
    }
    if (r < 0) {
        std::fprintf(stderr, "lkmctl: ignoring a malformed %s signal: %s\n",
                     sd_bus_message_get_member(message), std::strerror(-r));
        return 0;
    }
    monitor->print(event);
    return 0;
}

// Only lkmd's own signals: on the system bus anyone may send a signal with lkmd's path and
// interface, and the bus daemon compares the sender with org.lkmd1's owner.
int addMatches(sd_bus *bus, Monitor *monitor) {
    int r = sd_bus_match_signal(bus, nullptr, bus::kServiceName, bus::kManagerPath,
                                bus::kManagerInterface, nullptr, onSignal, monitor);
    if (r < 0)
        return r;
    return sd_bus_add_match(bus, nullptr,
                            "type='signal',sender='org.freedesktop.DBus',"
                            "path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
                            "member='NameOwnerChanged',arg0='org.lkmd1'",
                            onSignal, monitor);
}

}  // namespace

int runMonitor(sd_bus *bus, JsonMode json, bool quiet, bool colors, const std::string &place) {
    Monitor monitor{json, colors};
    int r = addMatches(bus, &monitor);
    if (r < 0) {
        std::fprintf(stderr, "%s\n", describeConnectFailure(r, place).c_str());
        return kExitNotRunning;
    }
    // No SA_RESTART: the signal interrupts sd_bus_wait(), and the loop ends cleanly.
    struct sigaction action = {};
    action.sa_handler = onStopSignal;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    if (!quiet)
        std::fprintf(stderr, "Monitoring lkmd's requests, loads and unloads%s%s.\n",
                     place.empty() ? "" : " ", place.c_str());

    while (!stopRequested) {
        r = sd_bus_process(bus, nullptr);
        if (r > 0)
            continue;
        if (r == 0)
            r = sd_bus_wait(bus, UINT64_MAX);
        if (r < 0 && r != -EINTR) {
            std::fprintf(stderr, "lkmctl: lost the system bus%s%s: %s\n", place.empty() ? "" : " ",
                         place.c_str(), std::strerror(-r));
            return kExitNotRunning;
        }
    }
    return kExitSuccess;
}

}  // namespace lkmd::client
