// SPDX-License-Identifier: LGPL-2.1-or-later
#include "terminal.h"

#include <langinfo.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace lkmd::client {

Getenv processEnvironment() {
    return [](std::string_view name) -> std::optional<std::string> {
        const char *value = std::getenv(std::string(name).c_str());
        return value ? std::optional<std::string>(value) : std::nullopt;
    };
}

std::optional<bool> parseBoolean(std::string_view text) {
    for (std::string_view yes : {"1", "yes", "y", "true", "t", "on"})
        if (text == yes)
            return true;
    for (std::string_view no : {"0", "no", "n", "false", "f", "off"})
        if (text == no)
            return false;
    return std::nullopt;
}

bool colorsWanted(const Getenv &getenv, bool stdoutIsTerminal, bool stderrIsTerminal) {
    if (const std::optional<std::string> mode = getenv("SYSTEMD_COLORS")) {
        if (const std::optional<bool> flag = parseBoolean(*mode))
            return *flag;
        if (*mode == "16" || *mode == "256" || *mode == "24bit")
            return true;
    }
    if (getenv("NO_COLOR"))
        return false;
    const std::optional<std::string> term = getenv("TERM");
    if (!term || term->empty() || *term == "dumb")
        return false;
    return stdoutIsTerminal && stderrIsTerminal;
}

std::size_t tableWidth(const Getenv &getenv, bool full, bool stdoutIsTerminal,
                       std::size_t ioctlColumns) {
    if (full || !stdoutIsTerminal)
        return 0;
    if (const std::optional<std::string> columns = getenv("COLUMNS")) {
        std::size_t value = 0;
        const char *end = columns->data() + columns->size();
        const auto [ptr, ec] = std::from_chars(columns->data(), end, value);
        if (ec == std::errc() && ptr == end && value > 0)
            return value;
    }
    return ioctlColumns > 0 ? ioctlColumns : 80;
}

TerminalStyle detectTerminalStyle(bool full) {
    const Getenv getenv = processEnvironment();
    const bool stdoutIsTerminal = isatty(STDOUT_FILENO) == 1;
    struct winsize size = {};
    const std::size_t columns =
        ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 ? std::size_t{size.ws_col} : 0;
    TerminalStyle style;
    style.width = tableWidth(getenv, full, stdoutIsTerminal, columns);
    style.colors = colorsWanted(getenv, stdoutIsTerminal, isatty(STDERR_FILENO) == 1);
    style.utf8 = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    return style;
}

std::string_view colorOn(Color color, bool colors) {
    if (!colors)
        return {};
    switch (color) {
        case Color::Red:
            return "\x1b[0;1;31m";
        case Color::Yellow:
            return "\x1b[0;1;33m";
        case Color::Green:
            return "\x1b[0;1;32m";
        case Color::Grey:
            return "\x1b[0;38;5;245m";
        case Color::Bold:
            return "\x1b[0;1;39m";
        case Color::Underline:
            return "\x1b[0;4m";
        case Color::None:
            break;
    }
    return {};
}

std::string_view colorOff(Color color, bool colors) {
    return colors && color != Color::None ? "\x1b[0m" : "";
}

std::string colored(std::string_view text, Color color, bool colors) {
    std::string out(colorOn(color, colors));
    out += text;
    out += colorOff(color, colors);
    return out;
}

}  // namespace lkmd::client
