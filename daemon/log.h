// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace lkmd {

// To the journal when stderr is the journal stream systemd gave us (JOURNAL_STREAM), else stderr.
void setupLogging(spdlog::level::level_enum level);

// One logger per component ("lkmd", "bus", "loader", "kmod"), sharing the sinks set up above.
std::shared_ptr<spdlog::logger> logger(const std::string &component);

}  // namespace lkmd
