// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmctl: asks lkmd over D-Bus to load, unload and describe kernel modules. Everything that can
// be decided without the bus lives in cli_args, output, status_output, bus_failure and terminal;
// the calls in bus_calls; this file runs the commands.
#include <locale.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "build_config.h"
#include "bus_calls.h"
#include "bus_errors.h"
#include "bus_failure.h"
#include "bus_names.h"
#include "bus_reader.h"
#include "cli_args.h"
#include "monitor.h"
#include "output.h"
#include "pager.h"
#include "request_name.h"
#include "status_output.h"
#include "terminal.h"
#include "text.h"
#include "time_format.h"
#include "why_chain.h"

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

std::uint64_t realtimeNowUsec() {
    struct timespec ts = {};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

// One run of lkmctl: the arguments, where output goes and how it looks.
class Run {
public:
    Run(const CliArgs &args, sd_bus *bus, std::string place)
        : args_(args), bus_(bus), place_(std::move(place)) {
        style_ = detectTerminalStyle(args.full);
        json_ = args.json == JsonMode::Auto
                    ? (isatty(STDOUT_FILENO) == 1 ? JsonMode::Pretty : JsonMode::Short)
                    : args.json;
    }

    int dispatch() {
        switch (args_.command) {
            case Command::Status:
                return status();
            case Command::List:
                return list();
            case Command::Requests:
                return requests();
            case Command::Monitor:
                return runMonitor(bus_, json_, args_.quiet, style_.colors, place_);
            case Command::Info:
                return info();
            case Command::Why:
                return why();
            case Command::Load:
                return load();
            case Command::Unload:
                return unload();
            case Command::Pin:
                return setPinned(true);
            case Command::Unpin:
                return setPinned(false);
            case Command::Reload:
                return reload();
            case Command::Explain:
                return explain();
            case Command::PolicySuggest:
                return suggest();
            case Command::None:
            case Command::Help:
            case Command::Version:
                break;
        }
        return kExitUsage;
    }

private:
    bool json() const { return json_ != JsonMode::Off; }

    TableLayout layout() const { return {style_.width, style_.colors, style_.utf8}; }

    // Long output goes through a pager on a terminal, as systemctl's does.
    void page() {
        if (!args_.pager || args_.quiet || isatty(STDOUT_FILENO) != 1)
            return;
        const Getenv getenv = processEnvironment();
        const std::optional<std::string> term = getenv("TERM");
        if (!term || *term == "dumb")
            return;
        uid_t owner = 0;
        const std::optional<uid_t> sessionOwner =
            sd_pid_get_owner_uid(0, &owner) >= 0 ? std::optional<uid_t>(owner) : std::nullopt;
        pager_.open(choosePager(getenv, pagerSecure(getenv, geteuid(), sessionOwner), style_.utf8));
    }

    void print(const std::string &text) const { std::fputs(text.c_str(), stdout); }

    // What a change says on success: nothing with -q.
    void say(const std::string &text) const {
        if (!args_.quiet)
            print(text);
    }

    int fail(const BusFailure &failure) const {
        const std::string line = describeCallFailure(args_.command, args_.module, failure, place_);
        std::fprintf(stderr, "%s\n", colored(line, Color::Red, style_.colors).c_str());
        return exitStatusFor(args_.command, failure);
    }

    // Never starts lkmd (bus activation would): "is it running" must not make it run.
    int status() {
        BusFailure failure;
        const int running = lkmdIsRunning(bus_, failure);
        if (running < 0)
            return fail(failure);
        if (running == 0) {
            if (!args_.quiet)
                print(json() ? dumpJson(notRunningJson(), json_) : formatNotRunning());
            return kExitNotLoaded;
        }
        PropertyMap properties;
        std::vector<ModuleInfo> modules;
        if (getManagerProperties(bus_, properties, failure) < 0 ||
            listModules(bus_, modules, failure) < 0)
            return fail(failure);
        if (args_.quiet)
            return kExitSuccess;
        const DaemonStatus daemon = daemonStatusFromProperties(properties);
        page();
        print(json() ? dumpJson(statusJson(daemon, modules), json_)
                     : formatStatus(daemon, modules, realtimeNowUsec(), style_.colors));
        return kExitSuccess;
    }

    int list() {
        std::vector<ModuleInfo> modules;
        BusFailure failure;
        if (listModules(bus_, modules, failure) < 0)
            return fail(failure);
        page();
        print(json() ? dumpJson(moduleListJson(std::move(modules)), json_)
                     : formatModuleList(std::move(modules), args_.legend, realtimeNowUsec(),
                                        layout()));
        return kExitSuccess;
    }

    int requests() {
        std::uint64_t sinceUsec = 0;
        if (!args_.filter.since.empty() &&
            !parseTimeSpec(args_.filter.since, realtimeNowUsec(), &sinceUsec)) {
            std::fprintf(stderr, "lkmctl: cannot understand --since=%s\nTry 'lkmctl --help'.\n",
                         quoteEscaped(args_.filter.since).c_str());
            return kExitUsage;
        }
        std::vector<RequestInfo> requests;
        BusFailure failure;
        if (listRequests(bus_, requests, failure) < 0)
            return fail(failure);
        requests = selectRequests(std::move(requests), args_.filter, sinceUsec);
        page();
        print(json() ? dumpJson(requestListJson(requests), json_)
                     : formatRequestList(requests, args_.legend, layout()));
        return kExitSuccess;
    }

    int info() {
        ModuleInfo module;
        BusFailure failure;
        if (getModule(bus_, args_.module, module, failure) < 0)
            return fail(failure);
        page();
        print(json() ? dumpJson(moduleDetailsJson(module), json_)
                     : formatModuleDetails(module, realtimeNowUsec()));
        return kExitSuccess;
    }

    int why() {
        ModuleInfo module;
        BusFailure failure;
        if (getModule(bus_, args_.module, module, failure) < 0)
            return fail(failure);
        const std::vector<WhyLink> chain = whyChain(module);
        print(json() ? dumpJson(whyChainJson(module, chain), json_)
                     : formatWhyChain(chain, style_.utf8));
        return kExitSuccess;
    }

    int load() {
        MessagePtr reply;
        BusFailure failure;
        int r;
        if (args_.autoclean) {
            // LoadModuleEx only for --autoclean: a plain load keeps working with an older lkmd.
            const AppendArguments append = [this](sd_bus_message *call) {
                return sd_bus_message_append(call, "sa{sv}", args_.module.c_str(), 1, "Autoclean",
                                             "b", 1);
            };
            r = callManager(bus_, "LoadModuleEx", append,
                            changeTimeout(bus_, kModuleCallTimeoutUsec), reply, failure);
        } else {
            r = callManager(bus_, "LoadModule", args_.module.c_str(),
                            changeTimeout(bus_, kModuleCallTimeoutUsec), reply, failure);
        }
        std::vector<std::string> inserted;
        if (r >= 0) {
            r = readStringArray(reply.get(), inserted);
            if (r < 0)
                failure = BusFailure{{}, "malformed reply from lkmd", -r};
        }
        if (r < 0)
            return fail(failure);
        say(json() ? dumpJson(loadResultJson(args_.module, inserted), json_)
                   : formatLoadResult(args_.module, inserted));
        return kExitSuccess;
    }

    // The module an alias or a '-' spelling stands for, as lkmd resolves it; said before acting,
    // and acted on by its own name, so that what is said is what is done.
    int resolve(std::string *module) {
        ModuleInfo info;
        BusFailure failure;
        if (getModule(bus_, args_.module, info, failure) < 0)
            return fail(failure);
        *module = info.name.empty() ? args_.module : info.name;
        if (!json())
            say(formatMeaning(args_.module, *module));
        return kExitSuccess;
    }

    int unload() {
        std::string module;
        if (const int status = resolve(&module); status != kExitSuccess)
            return status;
        MessagePtr reply;
        BusFailure failure;
        if (callManager(bus_, "UnloadModule", module.c_str(),
                        changeTimeout(bus_, kModuleCallTimeoutUsec), reply, failure) < 0)
            return fail(failure);
        say(json() ? dumpJson(unloadResultJson(args_.module, module), json_)
                   : formatUnloadResult(module));
        return kExitSuccess;
    }

    int setPinned(bool pinned) {
        std::string module;
        if (const int status = resolve(&module); status != kExitSuccess)
            return status;
        MessagePtr reply;
        BusFailure failure;
        const AppendArguments append = [&module, pinned](sd_bus_message *call) {
            return sd_bus_message_append(call, "sb", module.c_str(), pinned ? 1 : 0);
        };
        if (callManager(bus_, "SetModulePinned", append, changeTimeout(bus_, kDefaultTimeoutUsec),
                        reply, failure) < 0)
            return fail(failure);
        say(json() ? dumpJson(pinResultJson(args_.module, module, pinned), json_)
                   : formatPinResult(module, pinned));
        return kExitSuccess;
    }

    int reload() {
        MessagePtr reply;
        BusFailure failure;
        if (callManager(bus_, "Reload", nullptr, changeTimeout(bus_, kDefaultTimeoutUsec), reply,
                        failure) < 0)
            return fail(failure);
        say(json() ? dumpJson({{"reloaded", true}}, json_) : "Reloaded lkmd's configuration.\n");
        return kExitSuccess;
    }

    int explain() {
        ExplainInfo info;
        BusFailure failure;
        if (explainName(bus_, args_.module, info, failure) < 0)
            return fail(failure);
        page();
        print(json() ? dumpJson(explanationJson(info), json_)
                     : formatExplanation(info, style_.colors));
        return kExitSuccess;
    }

    // No pager: the drop-in is meant to be redirected into a file.
    int suggest() {
        std::vector<SuggestionInfo> suggestions;
        BusFailure failure;
        if (suggestAllowList(bus_, suggestions, failure) < 0)
            return fail(failure);
        print(json() ? dumpJson(suggestionsJson(suggestions), json_)
                     : formatAllowListDropIn(suggestions, realtimeNowUsec(), LKMD_CONFIG_DIR));
        return kExitSuccess;
    }

    const CliArgs &args_;
    sd_bus *bus_;
    std::string place_;
    TerminalStyle style_;
    JsonMode json_ = JsonMode::Off;
    Pager pager_;
};

int runOnBus(const CliArgs &args) {
    Connection connection;
    int r = openConnection(args, &connection);
    if (r < 0) {
        std::fprintf(stderr, "%s\n", describeConnectFailure(r, connection.place).c_str());
        return args.command == Command::Status ? kExitNotLoaded : kExitNotRunning;
    }
    sd_bus *bus = connection.bus.get();
    // As systemctl: on a terminal, polkit may ask (through the session's agent) rather than
    // refuse outright. Cannot fail on a bus that is open.
    (void)sd_bus_set_allow_interactive_authorization(bus, args.askPassword && isatty(STDIN_FILENO));
    r = sd_bus_error_add_map(bus::kErrorMap);
    if (r < 0) {
        std::fprintf(stderr, "lkmctl: cannot register lkmd's error names: %s\n", std::strerror(-r));
        return kExitFailure;
    }
    Run run(args, bus, connection.place);
    return run.dispatch();
}

int run(int argc, char **argv) {
    // For nl_langinfo(): "…" only where the terminal takes UTF-8. Times stay in the C locale.
    setlocale(LC_CTYPE, "");
    const std::vector<std::string_view> arguments(argv + (argc > 0 ? 1 : 0), argv + argc);
    const ParseResult parsed = parseArguments(arguments);
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "lkmctl: %s\nTry 'lkmctl --help'.\n", parsed.error.c_str());
        return kExitUsage;
    }

    const CliArgs &args = parsed.args;
    if (args.command == Command::Help) {
        Pager pager;
        if (args.pager && isatty(STDOUT_FILENO) == 1) {
            const Getenv getenv = processEnvironment();
            pager.open(choosePager(getenv, pagerSecure(getenv, geteuid(), std::nullopt), false));
        }
        std::fputs(helpText().c_str(), stdout);
        return kExitSuccess;
    }
    if (args.command == Command::Version) {
        std::fputs("lkmctl " LKMD_VERSION "\n", stdout);
        return kExitSuccess;
    }

    // The daemon checks names too; checking here spares the round trip and gives the same words.
    // Where a module is expected, a '.' is refused: libkmod would cut the name there.
    if (takesModule(args.command)) {
        const bool request = args.command == Command::Load || args.command == Command::Explain;
        const char *why =
            request ? whyInvalidRequestName(args.module) : whyInvalidModuleReference(args.module);
        if (why != nullptr) {
            std::fprintf(stderr, "lkmctl: invalid module name %s: %s\n",
                         quoteEscaped(args.module).c_str(), why);
            return kExitFailure;
        }
    }

    int status = runOnBus(args);
    if (std::fflush(stdout) != 0 && errno != EBADF) {
        std::fprintf(stderr, "lkmctl: cannot write output: %s\n", std::strerror(errno));
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
