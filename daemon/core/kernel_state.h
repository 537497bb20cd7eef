// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lkmd {

enum class LoadState { Live, Coming, Going };

// One row of /proc/modules.
struct LoadedModule {
    std::string name;
    std::uint64_t size = 0;
    int refcnt = -1;  // -1: the kernel cannot unload it ("-" in /proc/modules)
    std::vector<std::string> holders;
    LoadState state = LoadState::Live;
};

// What keeps a module busy beyond its refcnt: a driver bound to a live device has refcnt 0.
struct ModuleBindings {
    std::vector<std::string> drivers;  // "bus:driver"
    std::vector<std::string> devices;  // device names bound to those drivers
};

const char *loadStateName(LoadState state);

// Parses /proc/modules; malformed lines are skipped rather than failing the whole snapshot.
std::vector<LoadedModule> parseProcModules(std::string_view text);

// A kernel built with CONFIG_STATIC_USERMODEHELPER runs CONFIG_STATIC_USERMODEHELPER_PATH for
// every usermode helper, whatever kernel.modprobe says (an empty path disables them all). From the
// text of the kernel's build configuration: that path, or nullopt when the option is not set.
std::optional<std::string> parseStaticUsermodeHelper(std::string_view kernelConfig);

// Reads the kernel's view of loaded modules from procfs and sysfs, both roots configurable so
// that tests can point them at fixtures.
class KernelState {
public:
    KernelState(std::filesystem::path procfs, std::filesystem::path sysfs);

    int readLoaded(std::vector<LoadedModule> *modules) const;
    ModuleBindings readBindings(const std::string &module) const;
    // DEVPATH as udev spells it ("/devices/..."); false for an empty or relative one.
    bool deviceExists(const std::string &devpath) const;
    // Tells one load of a module from the next: the kernel creates /sys/module/NAME afresh for
    // every load, and sysfs never reuses an inode number. 0 when the module is not loaded.
    std::uint64_t moduleIdentity(const std::string &module) const;
    // kernel.modprobe (/proc/sys/kernel/modprobe): the program request_module() runs; empty when
    // it cannot be read.
    std::string readModprobePath() const;

private:
    std::filesystem::path procfs_;
    std::filesystem::path sysfs_;
};

}  // namespace lkmd
