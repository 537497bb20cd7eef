// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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
    bool autoclean = false;          // may be unloaded when idle
    bool pinned = false;             // never unloaded when idle, whatever autoclean says
    std::uint64_t identity = 0;      // inode of /sys/module/NAME: new for every load
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
    const std::map<std::string, ModuleRecord> &records() const { return records_; }
    ModuleRecord *findMutable(const std::string &module);

    // One line per record, tab-separated, under a version header. Fields come from validated
    // names and sysfs paths; stray tabs or newlines are replaced so one record stays one line.
    std::string serialize() const;
    // Records of a valid file; -EINVAL on an unknown header (the file is then ignored).
    static int parse(std::string_view text, ModuleRegistry *registry);

private:
    std::map<std::string, ModuleRecord> records_;
};

}  // namespace lkmd
