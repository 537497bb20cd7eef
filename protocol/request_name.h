// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lkmd {

// The kernel's MODULE_NAME_LEN is 56 including the terminator; request_module() names obey the
// same bound. Modaliases ("pci:v...") are longer and are bounded separately.
inline constexpr std::size_t kMaxModuleNameLength = 55;
inline constexpr std::size_t kMaxModaliasLength = 4095;

// Names arrive from the kernel (fs-<type> carries the mount(2) caller's text), from D-Bus and from
// sockets: all untrusted. Returns nullptr when name is acceptable, else why it is not, as a phrase
// ("contains '/'") for "invalid module name 'x': <phrase>". Modaliases may be up to 4095 bytes of
// printable ASCII without spaces; every other name is at most 55 bytes of [A-Za-z0-9_.,+@=()-].
const char *whyInvalidRequestName(std::string_view name);

// A module's own name, where one is expected (unload, pin, Keep=, a record read back): at most
// 55 bytes of [A-Za-z0-9_-]. libkmod cuts a name at its first '.' (modname_normalize): "e1000.x"
// would be e1000 to delete_module() but no /sys/module/e1000.x to lkmd's checks, so a '.' is
// refused rather than guessed at.
const char *whyInvalidModuleName(std::string_view name);

// What GetModule, UnloadModule and SetModulePinned accept: what a load accepts (a module name, an
// alias, a modalias), but never a '.', for the reason above; such a name is then resolved to the
// one module it stands for.
const char *whyInvalidModuleReference(std::string_view name);

// kmod treats '-' and '_' in module names alike; the kernel spells them with '_'.
std::string normalizeModuleName(std::string_view name);

// "bus:..." where bus is [a-z0-9_]+, the form of every modalias and of "devname:" requests.
bool looksLikeModalias(std::string_view name);

}  // namespace lkmd
