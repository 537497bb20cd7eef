// SPDX-License-Identifier: LGPL-2.1-or-later
#include "cli_args.h"

#include <array>
#include <utility>

#include "text.h"

namespace lkmd::client {
namespace {

struct CommandName {
    std::string_view name;
    Command command;
};

constexpr std::array kCommands = {
    CommandName{"status", Command::Status},     CommandName{"list", Command::List},
    CommandName{"requests", Command::Requests}, CommandName{"info", Command::Info},
    CommandName{"load", Command::Load},         CommandName{"unload", Command::Unload},
    CommandName{"pin", Command::Pin},           CommandName{"unpin", Command::Unpin},
};

Command commandForName(std::string_view name) {
    for (const CommandName &entry : kCommands)
        if (entry.name == name)
            return entry.command;
    return Command::None;
}

ParseResult failure(std::string error) {
    return ParseResult{{}, std::move(error)};
}

}  // namespace

bool takesModule(Command command) {
    switch (command) {
        case Command::Info:
        case Command::Load:
        case Command::Unload:
        case Command::Pin:
        case Command::Unpin:
            return true;
        default:
            return false;
    }
}

ParseResult parseArguments(const std::vector<std::string_view> &args) {
    CliArgs parsed;
    std::vector<std::string_view> positional;
    bool optionsEnded = false;

    for (std::string_view arg : args) {
        if (optionsEnded || arg.size() < 2 || arg[0] != '-') {
            positional.push_back(arg);
        } else if (arg == "--") {
            optionsEnded = true;
        } else if (arg == "-h" || arg == "--help") {
            return ParseResult{CliArgs{.command = Command::Help}, {}};
        } else if (arg == "--version") {
            return ParseResult{CliArgs{.command = Command::Version}, {}};
        } else if (arg == "--json") {
            parsed.json = true;
        } else if (arg == "--no-legend") {
            parsed.legend = false;
        } else if (arg == "--autoclean") {
            parsed.autoclean = true;
        } else if (arg == "--no-ask-password") {
            parsed.askPassword = false;
        } else {
            return failure("unknown option " + quoteEscaped(arg));
        }
    }

    if (positional.empty())
        return failure("missing command");

    parsed.command = commandForName(positional[0]);
    if (parsed.command == Command::None)
        return failure("unknown command " + quoteEscaped(positional[0]));
    // Silently ignoring it elsewhere would let "lkmctl --autoclean info x" look like it did
    // something.
    if (parsed.autoclean && parsed.command != Command::Load)
        return failure("--autoclean only applies to load");

    const std::size_t expected = takesModule(parsed.command) ? 2 : 1;
    if (positional.size() < expected)
        return failure("missing module name after " + quoteEscaped(positional[0]));
    if (positional.size() > expected)
        return failure("unexpected argument " + quoteEscaped(positional[expected]));
    if (expected == 2)
        parsed.module = std::string(positional[1]);
    return ParseResult{std::move(parsed), {}};
}

std::string helpText() {
    return "lkmctl [OPTIONS] COMMAND [MODULE]\n"
           "\n"
           "Ask lkmd, the kernel module daemon, to load and unload kernel modules.\n"
           "\n"
           "Commands:\n"
           "  status          Show the daemon's version and how many modules are loaded\n"
           "  list            List the loaded modules\n"
           "  requests        List the last load requests lkmd answered\n"
           "  info MODULE     Show everything known about a loaded module\n"
           "  load MODULE     Load a module and the modules it depends on\n"
           "  unload MODULE   Unload a module\n"
           "  pin MODULE      Keep a module lkmd loaded from being unloaded when idle\n"
           "  unpin MODULE    Let lkmd unload a pinned module again when idle\n"
           "\n"
           "Options:\n"
           "  -h --help       Show this help and exit\n"
           "     --version    Show the version and exit\n"
           "     --json       Print JSON instead of text\n"
           "     --no-legend  Leave out the header and footer of list and requests\n"
           "     --autoclean  load: let lkmd unload the modules it inserts once idle\n"
           "     --no-ask-password\n"
           "                  Do not let polkit ask for a password\n"
           "\n"
           "See the lkmctl(1) man page for details.\n";
}

}  // namespace lkmd::client
