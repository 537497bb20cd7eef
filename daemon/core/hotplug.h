// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "loader.h"
#include "scheduler.h"

namespace lkmd {

struct Uevent {
    std::string action;
    std::string devpath;  // "/devices/pci0000:00/0000:00:03.0"
    std::string subsystem;
    std::string modalias;
};

// Where uevents come from: libudev's netlink monitor in the daemon, a script in tests.
class UeventSource {
public:
    using EventHandler = std::function<void(const Uevent &event)>;
    using LossHandler = std::function<void()>;

    virtual ~UeventSource() = default;
    // onLoss: the kernel dropped events (ENOBUFS); the caller must rescan to catch up.
    virtual int start(EventHandler onEvent, LossHandler onLoss) = 0;
};

// Why a uevent's modalias cannot be acted upon, or nullptr. Kernel modaliases are printable ASCII
// without spaces; anything else, or over 4 KiB, is junk on the socket.
const char *whyInvalidModalias(std::string_view modalias);

// A device found in sysfs that no driver serves yet.
struct UnboundDevice {
    std::string devpath;
    std::string modalias;
    std::string subsystem;  // from its "subsystem" link; empty when it has none
};

// Every device under SYSFS/devices with a modalias and no driver bound, found through the
// SYSFS/bus/*/devices links, as eudev and FreeBSD's devmatch pick what to load.
std::vector<UnboundDevice> findUnboundDevices(const std::filesystem::path &sysfs);

// Loads drivers for devices: those that appear (hotplug) and those present at start (coldplug).
// Only devices without a bound driver count, so that nothing races a driver that is already
// serving a device, and udev's own loading (if left on) does not make lkmd act twice. The walk
// of /sys/devices runs as a job, off the loop.
class Hotplug {
public:
    Hotplug(Loader &loader, JobRunner &runner, std::filesystem::path sysfs, HotplugMode mode,
            std::size_t maxParallel);

    int start(UeventSource &source);
    void handle(const Uevent &event);
    void setMode(HotplugMode mode) { mode_ = mode; }
    // Called when a device goes away or loses its driver (remove, unbind), and when uevents were
    // lost: what kept a module may be gone.
    void setDeviceGoneHandler(std::function<void()> handler) { deviceGone_ = std::move(handler); }
    // Called when a module goes, whoever removed it (and when uevents were lost).
    void setModuleGoneHandler(std::function<void()> handler) { moduleGone_ = std::move(handler); }

    // Loads drivers for every unbound device; done gets the number of modules inserted. Also the
    // answer to lost events. Device loads, hotplug and coldplug together, run at most
    // maxParallel at a time.
    void coldplug(std::function<void(std::size_t inserted)> done = {});

private:
    bool deviceHasDriver(const std::string &devpath) const;
    void startNextLoads();
    void finishColdplug();

    Loader &loader_;
    JobRunner &runner_;
    std::filesystem::path sysfs_;
    HotplugMode mode_;
    std::size_t maxParallel_;

    struct ColdplugRun {
        std::size_t devices = 0;
        std::size_t waiting = 0;         // queued in present_ or loading
        bool walking = false;            // the job that finds the devices has not answered yet
        std::set<std::string> inserted;  // merged requests report the same insertion
        std::chrono::steady_clock::time_point started;
        std::vector<std::function<void(std::size_t)>> done;
    };
    std::unique_ptr<ColdplugRun> coldplug_;
    std::deque<UnboundDevice> arrivals_;  // from uevents, served first
    std::deque<UnboundDevice> present_;   // found by coldplug
    std::size_t running_ = 0;
    bool rescanWanted_ = false;
    std::function<void()> deviceGone_;
    std::function<void()> moduleGone_;
    bool pumping_ = false;
};

}  // namespace lkmd
