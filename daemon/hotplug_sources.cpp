// SPDX-License-Identifier: LGPL-2.1-or-later
#include "hotplug_sources.h"

#include "log.h"

namespace lkmd {

HotplugSources::HotplugSources(sd_event *event, Loader &loader, JobRunner &runner,
                               Autoclean &autoclean, std::filesystem::path sysfs,
                               std::size_t maxParallel, bool uevents)
    : event_(event),
      autoclean_(autoclean),
      hotplug_(loader, runner, std::move(sysfs), HotplugMode::Off, maxParallel),
      uevents_(uevents) {
    hotplug_.setDeviceGoneHandler([this] { autoclean_.deviceGone(); });
    hotplug_.setModuleGoneHandler([this] { autoclean_.moduleGone(); });
}

int HotplugSources::apply(const HotplugSettings &settings, bool starting) {
    const HotplugMode previous = mode_;
    if (settings.mode == HotplugMode::Off || !uevents_) {
        monitor_.reset();
        source_.reset();
    } else if (!monitor_ || source_ != settings.source) {
        int error = 0;
        std::unique_ptr<UdevMonitor> next = UdevMonitor::create(event_, settings.source, &error);
        if (next)
            error = hotplug_.start(*next);
        if (error < 0)
            return error;
        monitor_ = std::move(next);
        source_ = settings.source;
    }
    hotplug_.setMode(settings.mode);
    autoclean_.setDeviceEvents(monitor_ != nullptr);
    mode_ = settings.mode;
    if (!starting && settings.mode == previous)
        return 0;
    if (monitor_)
        logger("hotplug")->info(
            "Listening to {} uevents ({})", monitor_->sourceName(),
            settings.mode == HotplugMode::Load ? "loading drivers" : "observing only");
    else if (!starting && settings.mode == HotplugMode::Off)
        logger("hotplug")->info("Hotplug is off: uevents are not listened to");
    return 0;
}

}  // namespace lkmd
