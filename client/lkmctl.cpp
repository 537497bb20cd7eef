// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl: asks lkmd over D-Bus to load, unload and describe kernel modules. Everything that can
// be decided without the bus lives in cli_args, output and bus_failure; this file only talks.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include <systemd/sd-bus.h>

#include "build_config.h"
#include "bus_errors.h"
#include "bus_failure.h"
#include "bus_handles.h"
#include "bus_names.h"
#include "bus_reader.h"
#include "cli_args.h"
#include "output.h"
#include "request_name.h"
#include "text.h"

namespace lkmd::client {
namespace {

// Loads wait for driver probes, which have been seen to take 13 s; sd-bus's default of 25 s is
// too tight for a module with several such dependencies.
constexpr std::uint64_t kModuleCallTimeoutUsec = 120ULL * 1000 * 1000;
constexpr std::uint64_t kDefaultTimeoutUsec = 0;  // sd-bus's default
constexpr std::uint64_t kSdBusDefaultTimeoutUsec = 25ULL * 1000 * 1000;

// A call that may make polkit ask for a password first: wait for lkmd's polkit window on top,
// rather than give up on a change lkmd would still carry out once the password is typed.
std::uint64_t changeTimeout(sd_bus *bus, std::uint64_t usec) {
    if (sd_bus_get_allow_interactive_authorization(bus) <= 0)
        return usec;
    return (usec != 0 ? usec : kSdBusDefaultTimeoutUsec) + bus::kInteractiveAuthorizationUsec;
}

constexpr int kExitSuccess = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

BusFailure failureFrom(const sd_bus_error *error, int r) {
    BusFailure failure;
    failure.name = error->name ? error->name : "";
    failure.message = error->message ? error->message : "";
    failure.error = sd_bus_error_is_set(error) ? sd_bus_error_get_errno(error) : -r;
    return failure;
}

// The call succeeded but its reply does not have the documented signature.
BusFailure malformedReply(int r) {
    return BusFailure{{}, "malformed reply from lkmd: " + std::string(std::strerror(-r)), -r};
}

// Appends a call's arguments; returns a negative errno on failure.
using AppendArguments = std::function<int(sd_bus_message *)>;

// One org.lkmd1.Manager call. Returns a negative errno and fills failure when the call fails.
int callManager(sd_bus *bus, const char *method, const AppendArguments &appendArguments,
                std::uint64_t timeoutUsec, MessagePtr &reply, BusFailure &failure) {
    sd_bus_message *raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, bus::kServiceName, bus::kManagerPath,
                                           bus::kManagerInterface, method);
    MessagePtr call(raw);
    if (r >= 0 && appendArguments)
        r = appendArguments(call.get());
    if (r < 0) {
        failure = BusFailure{{}, {}, -r};
        return r;
    }

    BusError error;
    raw = nullptr;
    r = sd_bus_call(bus, call.get(), timeoutUsec, error.get(), &raw);
    reply.reset(raw);
    if (r < 0) {
        failure = failureFrom(error.get(), r);
        return r;
    }
    return 0;
}

// The same, for the methods whose only argument is a string.
int callManager(sd_bus *bus, const char *method, const char *argument, std::uint64_t timeoutUsec,
                MessagePtr &reply, BusFailure &failure) {
    const AppendArguments append = [argument](sd_bus_message *call) {
        return sd_bus_message_append(call, "s", argument);
    };
    return callManager(bus, method, argument ? append : AppendArguments{}, timeoutUsec, reply,
                       failure);
}

std::uint64_t realtimeNowUsec() {
    struct timespec ts = {};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

int readVersion(sd_bus *bus, std::string &version, BusFailure &failure) {
    BusError error;
    char *raw = nullptr;
    const int r = sd_bus_get_property_string(bus, bus::kServiceName, bus::kManagerPath,
                                             bus::kManagerInterface, "Version", error.get(), &raw);
    MallocedString owned(raw);
    if (r < 0) {
        failure = failureFrom(error.get(), r);
        return r;
    }
    version = owned.get();
    return 0;
}

int listModules(sd_bus *bus, std::vector<ModuleInfo> &modules, BusFailure &failure) {
    MessagePtr reply;
    int r = callManager(bus, "ListModules", nullptr, kDefaultTimeoutUsec, reply, failure);
    if (r < 0)
        return r;
    r = readModuleList(reply.get(), modules);
    if (r < 0)
        failure = malformedReply(r);
    return r;
}

void print(const std::string &text) {
    std::fputs(text.c_str(), stdout);
}

void printFailure(const std::string &sentence) {
    std::fprintf(stderr, "%s\n", sentence.c_str());
}

int runStatus(sd_bus *bus, const CliArgs &args) {
    std::string version;
    std::vector<ModuleInfo> modules;
    BusFailure failure;
    if (readVersion(bus, version, failure) < 0 || listModules(bus, modules, failure) < 0) {
        printFailure(describeCallFailure(args.command, {}, failure));
        return kExitFailure;
    }
    print(args.json ? dumpJson(statusJson(version, modules)) : formatStatus(version, modules));
    return kExitSuccess;
}

int runList(sd_bus *bus, const CliArgs &args) {
    std::vector<ModuleInfo> modules;
    BusFailure failure;
    if (listModules(bus, modules, failure) < 0) {
        printFailure(describeCallFailure(args.command, {}, failure));
        return kExitFailure;
    }
    print(args.json ? dumpJson(moduleListJson(std::move(modules)))
                    : formatModuleList(std::move(modules), args.legend, realtimeNowUsec()));
    return kExitSuccess;
}

int runRequests(sd_bus *bus, const CliArgs &args) {
    MessagePtr reply;
    BusFailure failure;
    int r = callManager(bus, "ListRequests", nullptr, kDefaultTimeoutUsec, reply, failure);
    std::vector<RequestInfo> requests;
    if (r >= 0) {
        r = readRequestList(reply.get(), requests);
        if (r < 0)
            failure = malformedReply(r);
    }
    if (r < 0) {
        printFailure(describeCallFailure(args.command, {}, failure));
        return kExitFailure;
    }
    print(args.json ? dumpJson(requestListJson(requests))
                    : formatRequestList(requests, args.legend));
    return kExitSuccess;
}

int runInfo(sd_bus *bus, const CliArgs &args) {
    MessagePtr reply;
    BusFailure failure;
    int r = callManager(bus, "GetModule", args.module.c_str(), kDefaultTimeoutUsec, reply, failure);
    PropertyMap properties;
    if (r >= 0) {
        r = readPropertyMap(reply.get(), properties);
        if (r < 0)
            failure = malformedReply(r);
    }
    if (r < 0) {
        printFailure(describeCallFailure(args.command, args.module, failure));
        return kExitFailure;
    }
    const ModuleInfo module = moduleInfoFromProperties(properties);
    print(args.json ? dumpJson(moduleDetailsJson(module))
                    : formatModuleDetails(module, realtimeNowUsec()));
    return kExitSuccess;
}

int runLoad(sd_bus *bus, const CliArgs &args) {
    MessagePtr reply;
    BusFailure failure;
    int r;
    if (args.autoclean) {
        // LoadModuleEx only for --autoclean: a plain load keeps working with an older lkmd.
        const AppendArguments append = [&args](sd_bus_message *call) {
            return sd_bus_message_append(call, "sa{sv}", args.module.c_str(), 1, "Autoclean", "b",
                                         1);
        };
        r = callManager(bus, "LoadModuleEx", append, changeTimeout(bus, kModuleCallTimeoutUsec),
                        reply, failure);
    } else {
        r = callManager(bus, "LoadModule", args.module.c_str(),
                        changeTimeout(bus, kModuleCallTimeoutUsec), reply, failure);
    }
    std::vector<std::string> inserted;
    if (r >= 0) {
        r = readStringArray(reply.get(), inserted);
        if (r < 0)
            failure = malformedReply(r);
    }
    if (r < 0) {
        printFailure(describeCallFailure(args.command, args.module, failure));
        return kExitFailure;
    }
    print(args.json ? dumpJson(loadResultJson(args.module, inserted))
                    : formatLoadResult(args.module, inserted));
    return kExitSuccess;
}

int runUnload(sd_bus *bus, const CliArgs &args) {
    MessagePtr reply;
    BusFailure failure;
    if (callManager(bus, "UnloadModule", args.module.c_str(),
                    changeTimeout(bus, kModuleCallTimeoutUsec), reply, failure) < 0) {
        printFailure(describeCallFailure(args.command, args.module, failure));
        return kExitFailure;
    }
    print(args.json ? dumpJson(unloadResultJson(args.module)) : formatUnloadResult(args.module));
    return kExitSuccess;
}

int runSetPinned(sd_bus *bus, const CliArgs &args, bool pinned) {
    MessagePtr reply;
    BusFailure failure;
    const AppendArguments append = [&args, pinned](sd_bus_message *call) {
        return sd_bus_message_append(call, "sb", args.module.c_str(), pinned ? 1 : 0);
    };
    if (callManager(bus, "SetModulePinned", append, changeTimeout(bus, kDefaultTimeoutUsec), reply,
                    failure) < 0) {
        printFailure(describeCallFailure(args.command, args.module, failure));
        return kExitFailure;
    }
    print(args.json ? dumpJson(pinResultJson(args.module, pinned))
                    : formatPinResult(args.module, pinned));
    return kExitSuccess;
}

int runOnBus(const CliArgs &args) {
    sd_bus *raw = nullptr;
    int r = sd_bus_open_system(&raw);
    BusPtr bus(raw);
    if (r < 0) {
        printFailure(describeConnectFailure(r));
        return kExitFailure;
    }
    // As systemctl: on a terminal, polkit may ask (through the session's agent) rather than
    // refuse outright. Cannot fail on a bus that is open.
    (void)sd_bus_set_allow_interactive_authorization(bus.get(),
                                                     args.askPassword && isatty(STDIN_FILENO));
    r = sd_bus_error_add_map(bus::kErrorMap);
    if (r < 0) {
        printFailure("lkmctl: cannot register lkmd's error names: " +
                     std::string(std::strerror(-r)));
        return kExitFailure;
    }

    switch (args.command) {
        case Command::Status:
            return runStatus(bus.get(), args);
        case Command::List:
            return runList(bus.get(), args);
        case Command::Requests:
            return runRequests(bus.get(), args);
        case Command::Info:
            return runInfo(bus.get(), args);
        case Command::Load:
            return runLoad(bus.get(), args);
        case Command::Unload:
            return runUnload(bus.get(), args);
        case Command::Pin:
            return runSetPinned(bus.get(), args, true);
        case Command::Unpin:
            return runSetPinned(bus.get(), args, false);
        case Command::None:
        case Command::Help:
        case Command::Version:
            break;
    }
    return kExitUsage;
}

int run(int argc, char **argv) {
    const std::vector<std::string_view> arguments(argv + (argc > 0 ? 1 : 0), argv + argc);
    const ParseResult parsed = parseArguments(arguments);
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "lkmctl: %s\nTry 'lkmctl --help'.\n", parsed.error.c_str());
        return kExitUsage;
    }

    const CliArgs &args = parsed.args;
    if (args.command == Command::Help) {
        print(helpText());
        return kExitSuccess;
    }
    if (args.command == Command::Version) {
        print("lkmctl " LKMD_VERSION "\n");
        return kExitSuccess;
    }

    // The daemon checks names too; checking here spares the round trip and gives the same words.
    if (takesModule(args.command)) {
        if (const char *why = whyInvalidRequestName(args.module)) {
            printFailure("lkmctl: invalid module name " + quoteEscaped(args.module) + ": " + why);
            return kExitFailure;
        }
    }

    int status = runOnBus(args);
    if (std::fflush(stdout) != 0) {
        printFailure("lkmctl: cannot write output: " + std::string(std::strerror(errno)));
        status = kExitFailure;
    }
    return status;
}

}  // namespace
}  // namespace lkmd::client

// No exception may escape into the C runtime; the standard library can still throw bad_alloc.
int main(int argc, char **argv) {
    try {
        return lkmd::client::run(argc, argv);
    } catch (const std::bad_alloc &) {
        std::fputs("lkmctl: out of memory\n", stderr);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "lkmctl: %s\n", e.what());
    }
    return 1;
}
