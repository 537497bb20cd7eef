// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <string_view>

namespace lkmd {

// Writes text to PATH.tmp and renames it over path: a reader sees the old file or the new one,
// never half of one. 0 or -errno.
int writeFileAtomically(const std::filesystem::path &path, std::string_view text);

}  // namespace lkmd
