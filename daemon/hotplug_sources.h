// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include <systemd/sd-event.h>

#include "autoclean.h"
#include "config.h"
#include "hotplug.h"
#include "loader.h"
#include "udev_monitor.h"

namespace lkmd {

// The uevent monitor and what it feeds: hotplug loads, and the device and module events that
// wake autoclean. Puts [Hotplug] settings in force at start and on reload: a monitor only while
// the mode is not off, a new one when the source changes.
class HotplugSources {
public:
    HotplugSources(sd_event *event, Loader &loader, JobRunner &runner, Autoclean &autoclean,
                   std::filesystem::path sysfs, std::size_t maxParallel, bool uevents);

    // 0, or why no monitor could be had (the previous settings then stay in force).
    int apply(const HotplugSettings &settings, bool starting);
    void coldplug() { hotplug_.coldplug(); }

private:
    sd_event *event_;
    Autoclean &autoclean_;
    Hotplug hotplug_;
    // false under a simulated kernel: the uevents on this machine belong to another kernel.
    bool uevents_;
    std::unique_ptr<UdevMonitor> monitor_;
    std::optional<UeventSourceKind> source_;
    HotplugMode mode_ = HotplugMode::Off;
};

}  // namespace lkmd
