// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string_view>

#include <systemd/sd-bus.h>

namespace lkmd::bus {

// One row per org.lkmd1.Error.* name. Daemon and client share this table so that an errno raised
// in the daemon arrives as the same errno (and the same sentence) in the client.
struct ErrorInfo {
    const char *name;
    int error;           // positive errno
    const char *reason;  // completes "cannot load 'x': ..."
};

inline constexpr const char *kErrorInvalidName = "org.lkmd1.Error.InvalidName";
inline constexpr const char *kErrorNoSuchModule = "org.lkmd1.Error.NoSuchModule";
inline constexpr const char *kErrorNotLoaded = "org.lkmd1.Error.NotLoaded";
inline constexpr const char *kErrorBuiltin = "org.lkmd1.Error.Builtin";
inline constexpr const char *kErrorInUse = "org.lkmd1.Error.InUse";
inline constexpr const char *kErrorLoadFailed = "org.lkmd1.Error.LoadFailed";
inline constexpr const char *kErrorUnloadFailed = "org.lkmd1.Error.UnloadFailed";
inline constexpr const char *kErrorDenied = "org.lkmd1.Error.Denied";
inline constexpr const char *kErrorInvalidConfig = "org.lkmd1.Error.InvalidConfig";
inline constexpr const char *kErrorAmbiguousName = "org.lkmd1.Error.AmbiguousName";
inline constexpr const char *kErrorExternal = "org.lkmd1.Error.External";

// The error name for a negative or positive errno, or nullptr if it has no org.lkmd1 name.
const ErrorInfo *errorForErrno(int error);
const ErrorInfo *errorForName(std::string_view name);

// For sd_bus_error_add_map(): makes sd-bus translate our names to errnos and back.
extern const sd_bus_error_map kErrorMap[];

}  // namespace lkmd::bus
