// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

namespace lkmd {

// Where every component's logger writes (the daemon picks the journal or stderr, logging.h).
void setLogSinks(std::vector<spdlog::sink_ptr> sinks, spdlog::level::level_enum level);

// One logger per component ("lkmd", "bus", "loader", "kmod"), sharing the sinks set above.
std::shared_ptr<spdlog::logger> logger(const std::string &component);

// Untrusted text (a name a client sent) made safe for a log line: control and non-ASCII bytes as
// \xNN, at most 256 bytes of it.
std::string printable(std::string_view text);

// A journal field: KEY=value. A key may come more than once (MODULE= for each module).
using LogField = std::pair<std::string, std::string>;

// While one lives, journal entries logged on this thread carry its fields (MODULE=vfat,
// REQUESTER_UID=1000, MESSAGE_ID=...), so that `journalctl MODULE=vfat` finds what happened to
// vfat. They nest: an entry carries the fields of every live one on its thread.
class LogFields {
public:
    explicit LogFields(std::vector<LogField> fields);
    ~LogFields();
    LogFields(const LogFields &) = delete;
    LogFields &operator=(const LogFields &) = delete;

private:
    std::vector<LogField> fields_;
    const LogFields *outer_;
    friend void forEachLogField(const std::function<void(const LogField &)> &visit);
};

// Every field of the live LogFields on this thread, innermost last.
void forEachLogField(const std::function<void(const LogField &)> &visit);

}  // namespace lkmd
