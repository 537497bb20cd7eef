// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bus_failure.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "bus_errors.h"
#include "text.h"

namespace lkmd::client {
namespace {

constexpr std::string_view kSystemErrorPrefix = "System.Error.";

// Names the bus uses when the connection itself went away.
constexpr std::string_view kBrokenBusNames[] = {
    "org.freedesktop.DBus.Error.NoServer",
    "org.freedesktop.DBus.Error.Disconnected",
};

// Errnos of a broken socket that sd-bus reports under their own names ("System.Error.EPIPE").
// A daemon could send these names too, but none of them describes anything lkmd does.
bool isConnectionErrno(int error) {
    switch (error) {
        case ECONNREFUSED:
        case ECONNRESET:
        case ENOTCONN:
        case EPIPE:
        case ESHUTDOWN:
            return true;
        default:
            return false;
    }
}

// dbus-daemon's and systemd's names for an activation that failed.
bool isFailedStart(const BusFailure &failure) {
    return failure.name.starts_with("org.freedesktop.DBus.Error.Spawn.") ||
           failure.name == "org.freedesktop.systemd1.UnitFailed";
}

bool isBrokenBus(const BusFailure &failure) {
    for (std::string_view name : kBrokenBusNames)
        if (failure.name == name)
            return true;
    return failure.name.starts_with(kSystemErrorPrefix) && isConnectionErrno(failure.error);
}

std::string withPlace(std::string_view place) {
    return place.empty() ? std::string() : " " + std::string(place);
}

std::string whatFailed(Command command, std::string_view module) {
    switch (command) {
        case Command::Info:
            return "show " + quoteEscaped(module);
        case Command::Why:
            return "explain why " + quoteEscaped(module) + " is loaded";
        case Command::Load:
            return "load " + quoteEscaped(module);
        case Command::Unload:
            return "unload " + quoteEscaped(module);
        case Command::Pin:
            return "pin " + quoteEscaped(module);
        case Command::Unpin:
            return "unpin " + quoteEscaped(module);
        case Command::Requests:
            return "list requests";
        case Command::Reload:
            return "reload lkmd's configuration";
        case Command::Monitor:
            return "monitor lkmd";
        case Command::Status:
            return "show lkmd's status";
        case Command::Explain:
            return "explain " + quoteEscaped(module);
        case Command::PolicySuggest:
            return "suggest an allow-list";
        default:
            return "list modules";
    }
}

// The commands that need CAP_SYS_MODULE.
bool changesModules(Command command) {
    switch (command) {
        case Command::Load:
        case Command::Unload:
        case Command::Pin:
        case Command::Unpin:
        case Command::Reload:
            return true;
        default:
            return false;
    }
}

std::string strerrorText(int error) {
    return std::strerror(std::abs(error));
}

// The daemon's own words first; the shared table's phrase when it sent none.
std::string reason(Command command, const BusFailure &failure) {
    // lkmd says what the caller lacks (root, or polkit's org.lkmd1.manage) and why polkit said no.
    // An older lkmd refused through sd-bus's vtable check, whose message names only the method.
    if (failure.name == "org.freedesktop.DBus.Error.AccessDenied" ||
        failure.name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") {
        if (!changesModules(command))
            return "permission denied";
        if (failure.message.starts_with("needs "))
            return "permission denied: " + failure.message;
        return "permission denied (needs CAP_SYS_MODULE or root)";
    }
    // An lkmd older than lkmctl: load --autoclean (LoadModuleEx), pin and unpin (SetModulePinned),
    // explain and policy suggest use calls it may not have. Elsewhere sd-bus's message names the
    // method, which is enough.
    if (failure.name == "org.freedesktop.DBus.Error.UnknownMethod" &&
        (command == Command::Load || command == Command::Pin || command == Command::Unpin ||
         command == Command::Explain || command == Command::PolicySuggest))
        return "this version of lkmd does not support it";
    // sd_bus_call() names its own ETIMEDOUT so; the daemon may still finish the load.
    if (failure.name == "org.freedesktop.DBus.Error.Timeout")
        return "lkmd did not reply in time";
    if (!failure.message.empty())
        return failure.message;
    if (const bus::ErrorInfo *info = bus::errorForName(failure.name))
        return info->reason;
    if (failure.error != 0)
        return strerrorText(failure.error);
    return failure.name.empty() ? "unknown error" : failure.name;
}

}  // namespace

bool isNotRunning(const BusFailure &failure) {
    return failure.name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
           failure.name == "org.freedesktop.DBus.Error.NameHasNoOwner";
}

bool isUnreachable(const BusFailure &failure) {
    return isNotRunning(failure) || isFailedStart(failure) || isBrokenBus(failure);
}

int exitStatusFor(Command command, const BusFailure &failure) {
    if (isUnreachable(failure))
        return command == Command::Status ? kExitNotLoaded : kExitNotRunning;
    if (failure.name == bus::kErrorNoSuchModule)
        return kExitNoSuchModule;
    if (failure.name == bus::kErrorNotLoaded)
        return kExitNotLoaded;
    return kExitFailure;
}

// Plain sentences for what the bus calls ServiceUnknown or Disconnected.
std::string describeCallFailure(Command command, std::string_view module, const BusFailure &failure,
                                std::string_view place) {
    const std::string why = failure.message.empty()
                                ? (failure.error != 0 ? strerrorText(failure.error) : failure.name)
                                : failure.message;
    if (isNotRunning(failure))
        return "lkmctl: lkmd is not running" + withPlace(place);
    if (isFailedStart(failure))
        return "lkmctl: lkmd could not be started" + withPlace(place) + ": " +
               escapeForTerminal(why);
    if (isBrokenBus(failure))
        return "lkmctl: cannot reach the system bus" + withPlace(place) + ": " +
               escapeForTerminal(why);
    return "lkmctl: cannot " + whatFailed(command, module) + withPlace(place) + ": " +
           escapeForTerminal(reason(command, failure));
}

std::string describeConnectFailure(int error, std::string_view place) {
    return "lkmctl: cannot reach the system bus" + withPlace(place) + ": " + strerrorText(error);
}

}  // namespace lkmd::client
