// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "request_log.h"

namespace lkmd {

// What this host has needed, kept across reboots (STATE_DIR/history): what lkmctl policy suggest
// turns into an allow-list after a time in audit mode. The request log holds the last 256
// requests of this run; a filesystem mounted once a month must not fall out of it.
//
// One entry per name an allow-list would hold: the name a process asked for (fs-vfat, a D-Bus
// LoadModule's name), the module a device needed (a modalias is no name for a person).
struct HistoryEntry {
    std::string origin;                // of the last time: kernel, bus, hotplug, coldplug
    std::vector<std::string> modules;  // what it loaded or found loaded, last time
    std::string who;                   // "'mount' uid 0 from get_fs_type", a device's path
    std::uint64_t count = 0;
    std::uint64_t firstUsec = 0;  // CLOCK_REALTIME
    std::uint64_t lastUsec = 0;
};

class LoadHistory {
public:
    static constexpr std::size_t kMaxEntries = 4096;

    // Takes in an answered request; true when an entry is new (then the caller writes the
    // history: counts and times of known entries go along with the next write).
    bool note(const RequestRecord &record);

    const std::map<std::string, HistoryEntry> &entries() const { return entries_; }
    // Grows with every change: whether there is anything new to write.
    std::uint64_t changes() const { return changes_; }

    std::string serialize() const;
    // Takes back what serialize() wrote; entries a serialize() could not have written are
    // skipped and counted. -EINVAL on an unknown header.
    static int parse(std::string_view text, LoadHistory *history, std::size_t *skipped);

private:
    bool add(const std::string &name, const RequestRecord &record, std::vector<std::string> modules,
             std::string who);

    std::map<std::string, HistoryEntry> entries_;
    std::uint64_t changes_ = 0;
};

}  // namespace lkmd
