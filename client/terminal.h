// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace lkmd::client {

// How text output is shaped for where it goes, decided once before a pager takes stdout over.
struct TerminalStyle {
    std::size_t width = 0;  // columns tables must fit in; 0: no limit (piped, or --full)
    bool colors = false;
    bool utf8 = false;  // "…" rather than "..."
};

// The environment as a lookup, so that decisions can be tested without touching the process's.
using Getenv = std::function<std::optional<std::string>(std::string_view)>;
Getenv processEnvironment();

// systemd's rules: SYSTEMD_COLORS (a boolean, or 16, 256, 24bit) wins; then NO_COLOR (any value)
// turns colour off; then colour only when stdout and stderr are terminals and TERM is set and
// not "dumb".
bool colorsWanted(const Getenv &getenv, bool stdoutIsTerminal, bool stderrIsTerminal);

// The width to fit tables in: none with --full or when stdout is not a terminal (so piped output
// is never cut); else $COLUMNS when it is a positive number, else the terminal's (ioctlColumns,
// 0 when unknown), else 80.
std::size_t tableWidth(const Getenv &getenv, bool full, bool stdoutIsTerminal,
                       std::size_t ioctlColumns);

// The style for this process: isatty(), TIOCGWINSZ and the locale's character set.
TerminalStyle detectTerminalStyle(bool full);

// Escape sequences; empty when colors is false.
enum class Color { None, Red, Yellow, Green, Grey, Bold, Underline };
std::string_view colorOn(Color color, bool colors);
std::string_view colorOff(Color color, bool colors);
std::string colored(std::string_view text, Color color, bool colors);

// systemd's parse_boolean(): 1/yes/y/true/t/on, 0/no/n/false/f/off; nullopt otherwise.
std::optional<bool> parseBoolean(std::string_view text);

}  // namespace lkmd::client
