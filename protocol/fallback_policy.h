// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lkmd::fallback {

// What lkmd-modprobe holds requests to while lkmd does not answer, so that lkmd's policy never
// fails open (lkmd.conf(5), "WHILE LKMD IS DOWN"). lkmd compiles it from its policy and the
// module index into RUNTIME_DIR/fallback-policy:
//
//   lkmd-fallback 1
//   deny GLOB      a requested name matching GLOB is refused
//   allow GLOB     when there is any, only names matching one of them pass
//
// with the names and aliases of refused modules already expanded, since the helper cannot
// resolve a name itself.
inline constexpr std::string_view kHeader = "lkmd-fallback 1";

struct Rules {
    std::vector<std::string> deny;
    std::vector<std::string> allow;
};

std::string serialize(const Rules &rules);

enum class Verdict { Pass, Refuse };

// The verdict on a requested name. Text that is not a policy of this version refuses
// everything: a file lkmd wrote and someone broke must not let everything through.
Verdict judge(std::string_view text, const char *name);

}  // namespace lkmd::fallback
