// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lkmd::client {

enum class Command {
    None,
    Help,
    Version,
    Status,
    List,
    Requests,
    Info,
    Load,
    Unload,
    Pin,
    Unpin,
};

struct CliArgs {
    Command command = Command::None;
    std::string module;  // the argument of info, load, unload, pin and unpin
    bool json = false;
    bool legend = true;
    bool autoclean = false;   // load --autoclean
    bool askPassword = true;  // let polkit ask (when stdin is a terminal); --no-ask-password
};

struct ParseResult {
    CliArgs args;
    std::string error;  // a usage problem as a phrase, empty on success
};

// args excludes argv[0]. Options may come before or after the command; "--" ends them. -h/--help
// and --version win over anything that follows, as in systemd's tools.
ParseResult parseArguments(const std::vector<std::string_view> &args);

// Whether the command needs a module name and so a name check before it is sent.
bool takesModule(Command command);

std::string helpText();

}  // namespace lkmd::client
