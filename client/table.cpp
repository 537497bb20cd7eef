// SPDX-License-Identifier: LGPL-2.1-or-later
#include "table.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "text.h"

namespace lkmd::client {
namespace {

constexpr std::string_view kColumnGap = "  ";

void appendPadding(std::string &out, std::size_t width, std::size_t used) {
    if (width > used)
        out.append(width - used, ' ');
}

bool isContinuationByte(char c) {
    return (static_cast<unsigned char>(c) & 0xc0) == 0x80;
}

// The first count code points of text.
std::string_view prefixOfWidth(std::string_view text, std::size_t count) {
    std::size_t end = 0;
    std::size_t seen = 0;
    while (end < text.size()) {
        if (!isContinuationByte(text[end]) && seen++ == count)
            break;
        end++;
    }
    return text.substr(0, end);
}

}  // namespace

std::string ellipsize(std::string_view text, std::size_t width, bool utf8) {
    if (displayWidth(text) <= width)
        return std::string(text);
    const std::string_view mark = utf8 ? "…" : "...";
    const std::size_t markWidth = utf8 ? 1 : 3;
    if (width < markWidth)
        return std::string(prefixOfWidth(text, width));
    return std::string(prefixOfWidth(text, width - markWidth)) + std::string(mark);
}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::addRow(std::vector<std::string> cells, std::vector<Color> colors) {
    cells.resize(columns_.size());
    colors.resize(columns_.size(), Color::None);
    for (std::string &cell : cells)
        cell = escapeForTerminal(cell);
    rows_.push_back(std::move(cells));
    colors_.push_back(std::move(colors));
}

// Natural widths, then the excess taken from the shrinkable columns by weight, each down to its
// minimum at most; a column at its minimum leaves the rest to the others.
std::vector<std::size_t> Table::columnWidths(bool withHeader, std::size_t width) const {
    std::vector<std::size_t> widths(columns_.size(), 0);
    std::vector<std::size_t> minimum(columns_.size(), 0);
    for (std::size_t i = 0; i < columns_.size(); i++) {
        if (withHeader)
            widths[i] = displayWidth(columns_[i].header);
        for (const auto &row : rows_)
            widths[i] = std::max(widths[i], displayWidth(row[i]));
        minimum[i] =
            columns_[i].shrinkWeight == 0
                ? widths[i]
                : std::min(widths[i], std::max(columns_[i].minWidth,
                                               withHeader ? displayWidth(columns_[i].header)
                                                          : std::size_t{0}));
    }
    if (width == 0 || columns_.empty())
        return widths;
    const std::size_t gaps = kColumnGap.size() * (columns_.size() - 1);
    std::size_t total = std::accumulate(widths.begin(), widths.end(), gaps);
    while (total > width) {
        unsigned weights = 0;
        for (std::size_t i = 0; i < columns_.size(); i++)
            if (widths[i] > minimum[i])
                weights += columns_[i].shrinkWeight;
        if (weights == 0)
            break;
        const std::size_t excess = total - width;
        for (std::size_t i = 0; i < columns_.size() && total > width; i++) {
            if (widths[i] <= minimum[i])
                continue;
            const std::size_t share = std::max<std::size_t>(
                1, (excess * columns_[i].shrinkWeight + weights - 1) / weights);
            const std::size_t cut = std::min({share, widths[i] - minimum[i], total - width});
            widths[i] -= cut;
            total -= cut;
        }
    }
    return widths;
}

std::string Table::format(bool withHeader, const TableLayout &layout) const {
    const std::vector<std::size_t> widths = columnWidths(withHeader, layout.width);
    std::vector<std::vector<std::string>> lines;
    std::vector<std::vector<Color>> lineColors;
    if (withHeader) {
        std::vector<std::string> header;
        for (const Column &column : columns_)
            header.push_back(column.header);
        lines.push_back(std::move(header));
        lineColors.emplace_back(columns_.size(), Color::Underline);
    }
    lines.insert(lines.end(), rows_.begin(), rows_.end());
    lineColors.insert(lineColors.end(), colors_.begin(), colors_.end());

    std::string out;
    for (std::size_t row = 0; row < lines.size(); row++) {
        std::string text;
        for (std::size_t i = 0; i < columns_.size(); i++) {
            const std::string cell = ellipsize(lines[row][i], widths[i], layout.utf8);
            const std::size_t width = displayWidth(cell);
            const bool last = i + 1 == columns_.size();
            if (i > 0)
                text += kColumnGap;
            if (columns_[i].align == Align::Right)
                appendPadding(text, widths[i], width);
            text += cell.empty() ? cell : colored(cell, lineColors[row][i], layout.colors);
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

std::string formatKeyValueLines(const std::vector<std::pair<std::string, std::string>> &lines,
                                const std::vector<Color> &colors, bool useColors) {
    std::size_t keyWidth = 0;
    for (const auto &[key, value] : lines)
        keyWidth = std::max(keyWidth, displayWidth(key));

    std::string out;
    for (std::size_t i = 0; i < lines.size(); i++) {
        const auto &[key, value] = lines[i];
        const Color color = i < colors.size() ? colors[i] : Color::None;
        appendPadding(out, keyWidth, displayWidth(key));
        out += key;
        out += ": ";
        std::string_view rest = value;
        for (bool first = true; first || !rest.empty(); first = false) {
            const std::size_t end = rest.find('\n');
            if (!first)
                out.append(keyWidth + 2, ' ');
            out += colored(escapeForTerminal(rest.substr(0, end)), color, useColors);
            out += '\n';
            rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
        }
    }
    return out;
}

}  // namespace lkmd::client
