// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
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
    Monitor,
    Info,
    Load,
    Unload,
    Pin,
    Unpin,
    Reload,
    Why,
    Explain,
    PolicySuggest,  // "policy suggest"
};

// --json=MODE. Auto is -j: pretty on a terminal, short otherwise, as in systemd's tools.
enum class JsonMode { Off, Pretty, Short, Auto };

// What requests lists: every field empty lists everything.
struct RequestFilter {
    std::vector<std::string> origins;  // --origin=
    std::vector<std::string> results;  // --result=
    std::string since;                 // --since=, a time spec (time_format.h), parsed later
    std::vector<std::int64_t> uids;    // --uid=, of the requester
    std::vector<std::string> units;    // --unit=, the requester's systemd unit or scope
};

struct CliArgs {
    Command command = Command::None;
    std::string module;  // the argument of info, why, load, unload, pin, unpin and explain
    JsonMode json = JsonMode::Off;
    bool legend = true;
    bool full = false;        // -l: never cut a column
    bool pager = true;        // --no-pager
    bool quiet = false;       // -q: nothing on stdout, the exit status says it
    std::string host;         // -H [USER@]HOST: over ssh
    std::string machine;      // -M CONTAINER: a local container's bus
    bool autoclean = false;   // load --autoclean
    bool askPassword = true;  // let polkit ask (when stdin is a terminal); --no-ask-password
    RequestFilter filter;
};

struct ParseResult {
    CliArgs args;
    std::string error;  // a usage problem as a phrase, empty on success
};

// args excludes argv[0]. Parsed with getopt_long(): options may come before or after the
// command, "--" ends them, long options may be abbreviated. -h/--help and --version win over
// anything that follows, as in systemd's tools.
ParseResult parseArguments(const std::vector<std::string_view> &args);

// Whether the command needs a module name and so a name check before it is sent.
bool takesModule(Command command);

std::string helpText();

}  // namespace lkmd::client
