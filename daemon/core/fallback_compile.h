// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "policy.h"

namespace lkmd {

// The module tree as depmod indexed it: what lkmd needs to expand its policy into names the
// helper and kmod can match without resolving anything.
struct ModuleIndex {
    std::vector<std::string> modules;                              // normalized names
    std::vector<std::pair<std::string, std::string>> aliases;      // pattern, module
    std::map<std::string, std::vector<std::string>> dependencies;  // module, what it needs
};

// Parses DIR/modules.dep and DIR/modules.alias; -errno when modules.dep cannot be read.
int readModuleIndex(const std::filesystem::path &moduleDir, ModuleIndex *index);

// Whether compileFallback needs the index: only a policy that names modules (deny lists, rules,
// an enforced allow-list) does. Reading it costs lkmd's start a second of CPU under emulation.
bool needsModuleIndex(const Policy &policy);

// The policy as it must hold while lkmd does not answer: the rules lkmd-modprobe checks before
// it hands a request to kmod (protocol/fallback_policy.h), and a modprobe.d file that makes
// kmod itself refuse the modules lkmd refuses to everyone (install M /bin/false, as
// distributions block modules). Rules about some requesters hold for everyone there: the helper
// cannot tell who asked, and a rule never fails open. Audit-mode rules and exceptions do not
// count; the allow-list does, in enforce mode.
struct FallbackFiles {
    std::string helperPolicy;
    std::string modprobeConf;  // empty: nothing to refuse
};

FallbackFiles compileFallback(const Policy &policy, const ModuleIndex &index);

// The install command the modprobe.d file gives a refused module: it fails with a sentence a
// person running modprobe understands. lkmd's own libkmod reads the same file: a plan step with
// exactly this command is lkmd's own refusal, which its policy has judged already (and may have
// lifted since for some requester: an Action=allow rule), so lkmd inserts the module instead.
std::string refusalInstallCommand(const std::string &module);

}  // namespace lkmd
