// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

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

// While one lives, journal entries logged on this thread carry MODULE=<module>, so that
// `journalctl -u lkmd MODULE=vfat` finds what happened to vfat.
class ModuleLogField {
public:
    explicit ModuleLogField(const std::string &module);
    ~ModuleLogField();
    ModuleLogField(const ModuleLogField &) = delete;
    ModuleLogField &operator=(const ModuleLogField &) = delete;

private:
    const std::string *previous_;
};

// The module of the innermost ModuleLogField on this thread, or nullptr.
const std::string *currentLogModule();

}  // namespace lkmd
