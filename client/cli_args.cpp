// SPDX-License-Identifier: LGPL-2.1-or-later
#include "cli_args.h"

#include <getopt.h>
#include <pwd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string>
#include <utility>

#include "text.h"

namespace lkmd::client {
namespace {

struct CommandName {
    std::string_view name;
    Command command;
};

constexpr std::array kCommands = {
    CommandName{"status", Command::Status},
    CommandName{"list", Command::List},
    CommandName{"requests", Command::Requests},
    CommandName{"monitor", Command::Monitor},
    CommandName{"info", Command::Info},
    CommandName{"why", Command::Why},
    CommandName{"load", Command::Load},
    CommandName{"unload", Command::Unload},
    CommandName{"pin", Command::Pin},
    CommandName{"unpin", Command::Unpin},
    CommandName{"reload", Command::Reload},
    CommandName{"explain", Command::Explain},
    CommandName{"policy", Command::PolicySuggest},
    CommandName{"help", Command::Help},
};

// The verbs after "policy"; one so far.
constexpr std::array<std::string_view, 1> kPolicyVerbs = {"suggest"};

constexpr std::array<std::string_view, 4> kOrigins = {"kernel", "bus", "hotplug", "coldplug"};
constexpr std::array<std::string_view, 6> kResults = {"loaded",    "present", "denied",
                                                      "not-found", "invalid", "failed"};

enum Option {
    kVersion = 0x100,
    kJson,
    kNoPager,
    kNoLegend,
    kNoAskPassword,
    kAutoclean,
    kOrigin,
    kResult,
    kSince,
    kUid,
    kUnit,
};

constexpr struct option kLongOptions[] = {
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, kVersion},
    {"json", optional_argument, nullptr, kJson},
    {"host", required_argument, nullptr, 'H'},
    {"machine", required_argument, nullptr, 'M'},
    {"no-pager", no_argument, nullptr, kNoPager},
    {"full", no_argument, nullptr, 'l'},
    {"no-legend", no_argument, nullptr, kNoLegend},
    {"quiet", no_argument, nullptr, 'q'},
    {"no-ask-password", no_argument, nullptr, kNoAskPassword},
    {"autoclean", no_argument, nullptr, kAutoclean},
    {"origin", required_argument, nullptr, kOrigin},
    {"result", required_argument, nullptr, kResult},
    {"since", required_argument, nullptr, kSince},
    {"uid", required_argument, nullptr, kUid},
    {"unit", required_argument, nullptr, kUnit},
    {nullptr, 0, nullptr, 0},
};

// "-" first: non-options come back in order as option 1, whatever POSIXLY_CORRECT says; ":"
// tells a missing argument from an unknown option.
constexpr const char *kShortOptions = "-:hjlqH:M:";

Command commandForName(std::string_view name) {
    for (const CommandName &entry : kCommands)
        if (entry.name == name)
            return entry.command;
    return Command::None;
}

ParseResult failure(std::string error) {
    return ParseResult{{}, std::move(error)};
}

// "a,b" appended to list; empty when every item is one of allowed, else the first that is not.
template <std::size_t N>
std::string addListed(std::string_view text, const std::array<std::string_view, N> &allowed,
                      std::vector<std::string> &list) {
    while (true) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        if (std::find(allowed.begin(), allowed.end(), item) == allowed.end())
            return std::string(item.empty() ? "(empty)" : item);
        list.emplace_back(item);
        if (comma == std::string_view::npos)
            return {};
        text.remove_prefix(comma + 1);
    }
}

// "0,lp,1000" appended to uids (user names looked up); empty on success, else the bad item.
std::string addUids(std::string_view text, std::vector<std::int64_t> &uids) {
    while (true) {
        const std::size_t comma = text.find(',');
        const std::string item(text.substr(0, comma));
        std::int64_t uid = -1;
        const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), uid);
        if (item.empty() || error != std::errc() || end != item.data() + item.size() || uid < 0) {
            const struct passwd *user = item.empty() ? nullptr : getpwnam(item.c_str());
            if (user == nullptr)
                return item.empty() ? "(empty)" : item;
            uid = user->pw_uid;
        }
        uids.push_back(uid);
        if (comma == std::string_view::npos)
            return {};
        text.remove_prefix(comma + 1);
    }
}

// "a,b" appended to list as they are; empty on success, else "(empty)".
std::string addWords(std::string_view text, std::vector<std::string> &list) {
    while (true) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        if (item.empty())
            return "(empty)";
        list.emplace_back(item);
        if (comma == std::string_view::npos)
            return {};
        text.remove_prefix(comma + 1);
    }
}

// The element getopt_long() stopped at, for an error message.
std::string offending(char **argv, int optindAfter, int optopt) {
    if (optopt != 0 && optopt < 0x100)
        return std::string("-") + static_cast<char>(optopt);
    return argv[optindAfter - 1];
}

// "--no-pager=x": a known option given a value it does not take.
bool takesNoValue(std::string_view arg) {
    const std::size_t equals = arg.find('=');
    if (!arg.starts_with("--") || equals == std::string_view::npos)
        return false;
    const std::string_view name = arg.substr(2, equals - 2);
    for (const struct option *o = kLongOptions; o->name != nullptr; o++)
        if (name == o->name && o->has_arg == no_argument)
            return true;
    return false;
}

}  // namespace

bool takesModule(Command command) {
    switch (command) {
        case Command::Info:
        case Command::Why:
        case Command::Load:
        case Command::Unload:
        case Command::Pin:
        case Command::Unpin:
        case Command::Explain:
            return true;
        default:
            return false;
    }
}

ParseResult parseArguments(const std::vector<std::string_view> &args) {
    std::vector<std::string> storage{"lkmctl"};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char *> argv;
    for (std::string &arg : storage)
        argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int argc = static_cast<int>(storage.size());

    CliArgs parsed;
    std::vector<std::string> positional;
    bool filtered = false;
    opterr = 0;
    optind = 0;  // glibc: start afresh, as for a new argv
    for (int c; (c = getopt_long(argc, argv.data(), kShortOptions, kLongOptions, nullptr)) != -1;) {
        switch (c) {
            case 1:
                positional.emplace_back(optarg);
                break;
            case 'h':
                return ParseResult{CliArgs{.command = Command::Help}, {}};
            case kVersion:
                return ParseResult{CliArgs{.command = Command::Version}, {}};
            case 'j':
                parsed.json = JsonMode::Auto;
                break;
            case kJson: {
                const std::string_view mode = optarg ? optarg : "pretty";
                if (mode == "pretty")
                    parsed.json = JsonMode::Pretty;
                else if (mode == "short")
                    parsed.json = JsonMode::Short;
                else if (mode == "off")
                    parsed.json = JsonMode::Off;
                else
                    return failure("unknown JSON mode " + quoteEscaped(mode) +
                                   " (pretty, short or off)");
                break;
            }
            case 'H':
                parsed.host = optarg;
                break;
            case 'M':
                parsed.machine = optarg;
                break;
            case kNoPager:
                parsed.pager = false;
                break;
            case 'l':
                parsed.full = true;
                break;
            case kNoLegend:
                parsed.legend = false;
                break;
            case 'q':
                parsed.quiet = true;
                break;
            case kNoAskPassword:
                parsed.askPassword = false;
                break;
            case kAutoclean:
                parsed.autoclean = true;
                break;
            case kOrigin:
                filtered = true;
                if (std::string bad = addListed(optarg, kOrigins, parsed.filter.origins);
                    !bad.empty())
                    return failure("unknown origin " + quoteEscaped(bad) +
                                   " (kernel, bus, hotplug or coldplug)");
                break;
            case kResult:
                filtered = true;
                if (std::string bad = addListed(optarg, kResults, parsed.filter.results);
                    !bad.empty())
                    return failure("unknown result " + quoteEscaped(bad) +
                                   " (loaded, present, denied, not-found, invalid or failed)");
                break;
            case kSince:
                filtered = true;
                parsed.filter.since = optarg;
                break;
            case kUid:
                filtered = true;
                if (std::string bad = addUids(optarg, parsed.filter.uids); !bad.empty())
                    return failure("unknown user " + quoteEscaped(bad) + " (a uid or a user name)");
                break;
            case kUnit:
                filtered = true;
                if (std::string bad = addWords(optarg, parsed.filter.units); !bad.empty())
                    return failure("empty unit name in --unit");
                break;
            case ':':
                return failure("option " + quoteEscaped(argv[optind - 1]) + " needs an argument");
            default: {
                const std::string arg = offending(argv.data(), optind, optopt);
                if (takesNoValue(arg))
                    return failure("option " + quoteEscaped(arg.substr(0, arg.find('='))) +
                                   " takes no value");
                return failure("unknown option " + quoteEscaped(arg));
            }
        }
    }
    for (int i = optind; i < argc; i++)  // after "--"
        positional.emplace_back(argv[i]);

    if (positional.empty())
        return failure("missing command");
    parsed.command = commandForName(positional[0]);
    if (parsed.command == Command::None)
        return failure("unknown command " + quoteEscaped(positional[0]));
    // Silently ignoring them elsewhere would let "lkmctl --autoclean info x" look like it did
    // something.
    if (parsed.autoclean && parsed.command != Command::Load)
        return failure("--autoclean only applies to load");
    if (filtered && parsed.command != Command::Requests)
        return failure("--origin, --result, --since, --uid and --unit only apply to requests");
    if (!parsed.host.empty() && !parsed.machine.empty())
        return failure("--host and --machine cannot be used together");

    if (parsed.command == Command::PolicySuggest) {
        if (positional.size() < 2)
            return failure("missing verb after 'policy' (suggest)");
        if (std::find(kPolicyVerbs.begin(), kPolicyVerbs.end(), positional[1]) ==
            kPolicyVerbs.end())
            return failure("unknown policy verb " + quoteEscaped(positional[1]) + " (suggest)");
        positional.erase(positional.begin());
    }
    const std::size_t expected = takesModule(parsed.command) ? 2 : 1;
    if (positional.size() < expected)
        return failure("missing module name after " + quoteEscaped(positional[0]));
    if (positional.size() > expected)
        return failure("unexpected argument " + quoteEscaped(positional[expected]));
    if (expected == 2)
        parsed.module = positional[1];
    return ParseResult{std::move(parsed), {}};
}

std::string helpText() {
    return "lkmctl [OPTIONS] COMMAND [MODULE]\n"
           "\n"
           "Ask lkmd, the kernel module daemon, to load and unload kernel modules.\n"
           "\n"
           "Commands:\n"
           "  status          Show whether lkmd runs, its configuration and its counts\n"
           "  list            List the loaded modules\n"
           "  requests        List the last load requests lkmd answered\n"
           "  monitor         Follow lkmd's requests, loads and unloads as they happen\n"
           "  info MODULE     Show everything known about a loaded module\n"
           "  why MODULE      Show what caused a module to be loaded, back to who asked\n"
           "  load MODULE     Load a module and the modules it depends on\n"
           "  unload MODULE   Unload a module\n"
           "  pin MODULE      Keep a module lkmd loaded from being unloaded when idle\n"
           "  unpin MODULE    Let lkmd unload a pinned module again when idle\n"
           "  reload          Make lkmd read its configuration again\n"
           "  explain NAME    Show what a load of NAME would do and what the policy says\n"
           "  policy suggest  Print an allow-list drop-in from what this host has loaded\n"
           "  help            Show this help\n"
           "\n"
           "Options:\n"
           "  -h --help       Show this help and exit\n"
           "     --version    Show the version and exit\n"
           "  -H --host=[USER@]HOST\n"
           "                  Talk to lkmd on a remote host, over ssh\n"
           "  -M --machine=CONTAINER\n"
           "                  Talk to lkmd in a local container\n"
           "     --json=MODE  Print JSON: pretty, short (one line) or off\n"
           "  -j              --json=pretty on a terminal, --json=short otherwise\n"
           "  -l --full       Do not cut long values to the terminal's width\n"
           "     --no-pager   Do not pipe output into a pager\n"
           "     --no-legend  Leave out the header and footer of list and requests\n"
           "  -q --quiet      Print nothing on success; status: only the exit status\n"
           "     --no-ask-password\n"
           "                  Do not let polkit ask for a password\n"
           "     --autoclean  load: let lkmd unload the modules it inserts once idle\n"
           "     --origin=ORIGIN[,...]\n"
           "                  requests: only those from kernel, bus, hotplug or coldplug\n"
           "     --result=RESULT[,...]\n"
           "                  requests: only those that ended so (loaded, failed...)\n"
           "     --since=TIME requests: only those that arrived at TIME or later\n"
           "     --uid=UID[,...]\n"
           "                  requests: only those a process of these users caused\n"
           "     --unit=UNIT[,...]\n"
           "                  requests: only those caused from these systemd units\n"
           "\n"
           "See the lkmctl(1) man page for details.\n";
}

}  // namespace lkmd::client
