// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <spdlog/common.h>

namespace lkmd {

// To the journal, with structured fields, when stderr is the journal stream systemd gave us
// (JOURNAL_STREAM); else to stderr.
void setupLogging(spdlog::level::level_enum level);

}  // namespace lkmd
