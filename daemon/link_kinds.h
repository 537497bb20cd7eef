// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <set>
#include <string>

namespace lkmd {

// The kinds of the network links that exist ("dummy", "bridge", "vxlan" ...), from an RTM_GETLINK
// dump. A module that provides a link kind with a live link is in use although its refcnt is 0:
// unloading dummy deletes every dummy link (docs/kernel.md, "Users that hold no reference").
// Blocks for the dump (bounded by a receive timeout): call it from a job.
int readLinkKinds(std::set<std::string> *kinds);

}  // namespace lkmd
