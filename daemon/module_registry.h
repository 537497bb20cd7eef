// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lkmd {

// Who asked lkmd to load a module. The kernel keeps no such record (KERNEL-FACTS 8): lkmd must.
enum class Origin { Bus, Kernel, Hotplug, Coldplug };

const char *originName(Origin origin);

struct ModuleRecord {
    Origin origin = Origin::Bus;
    std::string trigger;  // the name that was requested, e.g. "fs-vfat"
    std::string device;   // hotplug and coldplug: the devpath whose modalias was requested
    std::uint64_t loadedAtUsec = 0;  // CLOCK_REALTIME
};

// The modules lkmd inserted, and why. Modules it did not insert are absent ("external").
class ModuleRegistry {
public:
    void record(const std::string &module, ModuleRecord record);
    void forget(const std::string &module);
    const ModuleRecord *find(const std::string &module) const;

    // Drops records of modules that are no longer loaded (someone else unloaded them), so that a
    // later load by another party is not mistaken for ours.
    void retainOnly(const std::vector<std::string> &loaded);

    std::size_t size() const { return records_.size(); }

private:
    std::map<std::string, ModuleRecord> records_;
};

}  // namespace lkmd
