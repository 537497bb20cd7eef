// SPDX-License-Identifier: LGPL-2.1-or-later
#include "hotplug.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <system_error>

#include "log.h"
#include "request_name.h"

namespace lkmd {

const char *whyInvalidModalias(std::string_view modalias) {
    if (modalias.empty())
        return "empty";
    if (modalias.size() > kMaxModaliasLength)
        return "longer than 4095 bytes";
    for (char c : modalias) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte >= 0x7f)
            return "contains spaces, control characters or non-ASCII bytes";
    }
    if (!looksLikeModalias(modalias))
        return "does not start with a bus name";
    return nullptr;
}

// Every device is a directory under SYSFS/devices; bus, class and virtual devices alike (an
// AT keyboard's input device is on no bus, and its modalias names evdev). Links are not
// followed, so each device is seen once.
std::vector<UnboundDevice> findUnboundDevices(const std::filesystem::path &sysfs) {
    namespace fs = std::filesystem;
    std::vector<UnboundDevice> found;
    const fs::path root = sysfs / "devices";
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const fs::directory_entry &entry = *it;
        std::error_code entryEc;
        if (entry.is_symlink(entryEc) || !entry.is_directory(entryEc)) {
            if (entry.is_symlink(entryEc))
                it.disable_recursion_pending();
            continue;
        }
        const fs::path device = entry.path();
        std::ifstream file(device / "modalias");
        std::string modalias;
        if (!file || !std::getline(file, modalias) || whyInvalidModalias(modalias) != nullptr)
            continue;
        if (fs::exists(device / "driver", entryEc))
            continue;
        const std::string subsystem =
            fs::read_symlink(device / "subsystem", entryEc).filename().string();
        found.push_back({"/" + device.lexically_relative(sysfs).string(), modalias, subsystem});
    }
    std::sort(found.begin(), found.end(),
              [](const UnboundDevice &a, const UnboundDevice &b) { return a.devpath < b.devpath; });
    return found;
}

Hotplug::Hotplug(Loader &loader, JobRunner &runner, std::filesystem::path sysfs, HotplugMode mode,
                 std::size_t maxParallel)
    : loader_(loader),
      runner_(runner),
      sysfs_(std::move(sysfs)),
      mode_(mode),
      maxParallel_(std::max<std::size_t>(1, maxParallel)) {}

int Hotplug::start(UeventSource &source) {
    return source.start([this](const Uevent &event) { handle(event); },
                        [this] {
                            logger("hotplug")->warn(
                                "The kernel dropped uevents (receive buffer full), rescanning "
                                "devices");
                            if (deviceGone_)
                                deviceGone_();
                            if (moduleGone_)
                                moduleGone_();
                            coldplug();
                        });
}

// devpath is under /devices and free of "..": checked by handle().
bool Hotplug::deviceHasDriver(const std::string &devpath) const {
    std::error_code ec;
    return std::filesystem::exists(
        sysfs_ / std::filesystem::path(devpath).relative_path() / "driver", ec);
}

void Hotplug::handle(const Uevent &event) {
    if (event.subsystem == "module") {
        if (event.action == "remove" && moduleGone_)
            moduleGone_();
        return;
    }
    if ((event.action == "remove" || event.action == "unbind") && deviceGone_)
        deviceGone_();
    if (mode_ == HotplugMode::Off || event.action != "add" || event.modalias.empty())
        return;
    if (const char *why = whyInvalidModalias(event.modalias)) {
        logger("hotplug")->warn("Ignoring uevent for '{}': MODALIAS {}",
                                event.devpath.substr(0, 200), why);
        return;
    }
    // Devices live under /devices (a DEVPATH of "/" or "//" once crashed lkmd).
    if (!event.devpath.starts_with("/devices/") || event.devpath.find("..") != std::string::npos) {
        logger("hotplug")->warn("Ignoring uevent with DEVPATH '{}'", event.devpath.substr(0, 200));
        return;
    }
    if (deviceHasDriver(event.devpath))
        return;
    if (mode_ == HotplugMode::Observe) {
        std::vector<std::string> modules;
        if (loader_.resolve(event.modalias, &modules) == 0) {
            std::string names;
            for (const std::string &module : modules)
                names += (names.empty() ? "" : ", ") + module;
            logger("hotplug")->info("Would load {} for '{}' ({})", names, event.devpath,
                                    event.modalias);
        }
        return;
    }
    // Ahead of what coldplug has queued: a device that just appeared is often the child of a
    // driver just loaded (USB devices behind xhci_pci), on the way to the last device bound.
    arrivals_.push_back({event.devpath, event.modalias, event.subsystem});
    startNextLoads();
}

void Hotplug::coldplug(std::function<void(std::size_t)> done) {
    if (mode_ != HotplugMode::Load) {
        if (done)
            done(0);
        return;
    }
    if (coldplug_) {
        // One scan at a time; a scan asked for meanwhile runs after this one, to catch up.
        rescanWanted_ = true;
        if (done)
            coldplug_->done.push_back(std::move(done));
        return;
    }
    coldplug_ = std::make_unique<ColdplugRun>();
    coldplug_->started = std::chrono::steady_clock::now();
    if (done)
        coldplug_->done.push_back(std::move(done));
    coldplug_->walking = true;
    runner_.submit([this, sysfs = sysfs_](ModuleBackend &) -> JobRunner::Completion {
        auto devices = std::make_shared<std::vector<UnboundDevice>>(findUnboundDevices(sysfs));
        // PCI devices first: host controllers and bridges, whose drivers reveal the devices
        // behind them (USB, SCSI, ATA); the firmware's ACPI nodes that come first in sysfs order
        // mostly have no module at all.
        std::stable_partition(devices->begin(), devices->end(), [](const UnboundDevice &device) {
            return device.subsystem == "pci";
        });
        return [this, devices] {
            coldplug_->walking = false;
            coldplug_->devices = devices->size();
            coldplug_->waiting = devices->size();
            present_.insert(present_.end(), devices->begin(), devices->end());
            startNextLoads();
        };
    });
}

// At most maxParallel device loads at a time, hotplug arrivals first: as udevd bounds its
// workers, so that a burst (udev's coldplug trigger replays every device) does not start dozens
// of insertions that only slow each other down on a few CPUs. A device bound meanwhile (the
// second e1000 once the first load of e1000 is done) is skipped. Loads may answer synchronously
// (nothing to insert), re-entering here: the guard keeps one loop.
void Hotplug::startNextLoads() {
    if (pumping_)
        return;
    // A reload switched away from load: what is queued is not loaded.
    if (mode_ != HotplugMode::Load) {
        arrivals_.clear();
        if (coldplug_)
            coldplug_->waiting -= present_.size();
        present_.clear();
        rescanWanted_ = false;
    }
    pumping_ = true;
    while (running_ < maxParallel_ && (!arrivals_.empty() || !present_.empty())) {
        const bool fromColdplug = arrivals_.empty();
        std::deque<UnboundDevice> &queue = fromColdplug ? present_ : arrivals_;
        const UnboundDevice device = std::move(queue.front());
        queue.pop_front();
        if (deviceHasDriver(device.devpath)) {
            if (fromColdplug)
                --coldplug_->waiting;
            continue;
        }
        ++running_;
        loader_.load(
            device.modalias, fromColdplug ? Origin::Coldplug : Origin::Hotplug,
            [this, fromColdplug](Outcome outcome) {
                --running_;
                if (fromColdplug) {
                    --coldplug_->waiting;
                    coldplug_->inserted.insert(outcome.inserted.begin(), outcome.inserted.end());
                }
                startNextLoads();
            },
            LoadOptions{device.devpath, false, device.subsystem, {}});
    }
    pumping_ = false;
    if (coldplug_ && !coldplug_->walking && coldplug_->waiting == 0)
        finishColdplug();
}

void Hotplug::finishColdplug() {
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - coldplug_->started);
    logger("hotplug")->info("Coldplug: loaded {} modules for {} devices without a driver in {} ms",
                            coldplug_->inserted.size(), coldplug_->devices, elapsed.count());
    std::unique_ptr<ColdplugRun> finished = std::move(coldplug_);
    for (const auto &callback : finished->done)
        callback(finished->inserted.size());
    if (rescanWanted_) {
        rescanWanted_ = false;
        coldplug();
    }
}

}  // namespace lkmd
