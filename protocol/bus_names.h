// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

namespace lkmd::bus {

inline constexpr const char *kServiceName = "org.lkmd1";
inline constexpr const char *kManagerPath = "/org/lkmd1";
inline constexpr const char *kManagerInterface = "org.lkmd1.Manager";

}  // namespace lkmd::bus
