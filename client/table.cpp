// SPDX-License-Identifier: LGPL-2.1-or-later
#include "table.h"

#include <algorithm>
#include <utility>

#include "text.h"

namespace lkmd::client {
namespace {

constexpr std::string_view kColumnGap = "  ";

void appendPadding(std::string &out, std::size_t width, std::size_t used) {
    if (width > used)
        out.append(width - used, ' ');
}

}  // namespace

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::addRow(std::vector<std::string> cells) {
    cells.resize(columns_.size());
    for (std::string &cell : cells)
        cell = escapeForTerminal(cell);
    rows_.push_back(std::move(cells));
}

std::string Table::format(bool withHeader) const {
    std::vector<std::vector<std::string>> lines;
    if (withHeader) {
        std::vector<std::string> header;
        for (const Column &column : columns_)
            header.push_back(column.header);
        lines.push_back(std::move(header));
    }
    lines.insert(lines.end(), rows_.begin(), rows_.end());

    std::vector<std::size_t> widths(columns_.size(), 0);
    for (const auto &line : lines)
        for (std::size_t i = 0; i < line.size(); i++)
            widths[i] = std::max(widths[i], displayWidth(line[i]));

    std::string out;
    for (const auto &line : lines) {
        std::string text;
        for (std::size_t i = 0; i < line.size(); i++) {
            const std::size_t width = displayWidth(line[i]);
            const bool last = i + 1 == line.size();
            if (i > 0)
                text += kColumnGap;
            if (columns_[i].align == Align::Right)
                appendPadding(text, widths[i], width);
            text += line[i];
            if (columns_[i].align == Align::Left && !last)
                appendPadding(text, widths[i], width);
        }
        // An empty trailing cell would leave the gap and padding behind.
        text.erase(text.find_last_not_of(' ') + 1);
        out += text;
        out += '\n';
    }
    return out;
}

std::string formatKeyValueLines(const std::vector<std::pair<std::string, std::string>> &lines) {
    std::size_t keyWidth = 0;
    for (const auto &[key, value] : lines)
        keyWidth = std::max(keyWidth, displayWidth(key));

    std::string out;
    for (const auto &[key, value] : lines) {
        appendPadding(out, keyWidth, displayWidth(key));
        out += key;
        out += ": ";
        out += escapeForTerminal(value);
        out += '\n';
    }
    return out;
}

}  // namespace lkmd::client
