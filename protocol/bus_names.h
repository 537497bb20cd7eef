// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

namespace lkmd::bus {

inline constexpr const char *kServiceName = "org.lkmd1";
inline constexpr const char *kManagerPath = "/org/lkmd1";
inline constexpr const char *kManagerInterface = "org.lkmd1.Manager";

// How long lkmd waits for polkit when the call allows interactive authorization: long enough
// to type a password. Clients that allow it wait this much longer for the answer.
inline constexpr unsigned long long kInteractiveAuthorizationUsec = 300ULL * 1000 * 1000;

}  // namespace lkmd::bus
