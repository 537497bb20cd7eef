// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "requester.h"

namespace lkmd {

// Who asked lkmd to load a module. The kernel keeps no such record (docs/kernel.md, "Unloading"):
// lkmd must.
enum class Origin { Bus, Kernel, Hotplug, Coldplug };

const char *originName(Origin origin);
bool parseOrigin(std::string_view text, Origin *origin);

// How a module came into a load: the module asked for, or one it needed.
enum class Need { Requested, Dependency, SoftDependency };

const char *needName(Need need);  // "requested", "dependency", "soft dependency"
bool parseNeed(std::string_view text, Need *need);

struct ModuleRecord {
    Origin origin = Origin::Bus;
    std::string trigger;    // the name that was requested, e.g. "fs-vfat"
    std::string device;     // hotplug and coldplug: the devpath whose modalias was requested
    std::string subsystem;  // hotplug and coldplug: the device's subsystem
    Need need = Need::Requested;
    std::string neededBy;            // for a dependency: the module asked for, e.g. "vfat" for fat
    Requester requester;             // who caused the load (the kernel's requester, the bus caller)
    std::uint64_t loadedAtUsec = 0;  // CLOCK_REALTIME
    bool autoclean = false;          // may be unloaded when idle
    bool pinned = false;             // never unloaded when idle, whatever autoclean says
    // The inode of /sys/module/NAME: the kernel makes the directory afresh for every load, so a
    // module removed and loaded again by someone else has another one. 0 while inserting.
    std::uint64_t identity = 0;
    // lkmd's insertion is under way (written before finit_module starts, so that a restart after
    // lkmd died in the middle knows the module was its own).
    bool inserting = false;
};

// The modules lkmd inserted, and why. Modules it did not insert are absent ("external"). Every
// change is announced to the change handler, which persists it (state_file.h).
class ModuleRegistry {
public:
    using ChangeHandler = std::function<void()>;
    void setChangeHandler(ChangeHandler handler) { changed_ = std::move(handler); }

    void record(const std::string &module, ModuleRecord record);
    void forget(const std::string &module);
    // The insertion announced with an inserting record succeeded: this is the module's identity.
    void confirm(const std::string &module, std::uint64_t identity);
    // -ESRCH when lkmd holds no record of the module.
    int setPinned(const std::string &module, bool pinned);

    const ModuleRecord *find(const std::string &module) const;
    // The record, if it is about the module loaded now (same identity) or one being inserted.
    const ModuleRecord *findCurrent(const std::string &module, std::uint64_t currentIdentity) const;

    // Forgets records whose module is gone or was loaded again by someone else (another
    // identity); identityOf gives the current identity, 0 when not loaded. Returns the names.
    std::vector<std::string> reconcile(
        const std::function<std::uint64_t(const std::string &)> &identityOf);

    std::size_t size() const { return records_.size(); }
    const std::map<std::string, ModuleRecord> &records() const { return records_; }

    // One line per record: the name, then tab-separated key=value fields with tab, newline, CR
    // and '%' escaped as %XX, under a version header. parse() takes back what serialize() wrote
    // and skips any record a serialize() could not have written (an invalid module name, origin
    // or number, a missing field): the file lives in /run and is read as root, so nothing in it
    // is trusted. Unknown keys are ignored, so that a newer lkmd's fields do not cost a record.
    std::string serialize() const;
    // -EINVAL on an unknown header (the file is then ignored whole).
    static int parse(std::string_view text, ModuleRegistry *registry, std::size_t *skipped);

private:
    void changed() {
        if (changed_)
            changed_();
    }

    std::map<std::string, ModuleRecord> records_;
    ChangeHandler changed_;
};

}  // namespace lkmd
