// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "terminal.h"

namespace lkmd::client {

// Where a table's lines go: width 0 for no limit.
struct TableLayout {
    std::size_t width = 0;
    bool colors = false;
    bool utf8 = true;
};

// A text table whose columns are as wide as their widest cell, two spaces apart. Cells are raw
// text: the table escapes them (escapeForTerminal()), so bus data can be passed in as received.
// Given a width, it cuts the free-text columns with "…" until the lines fit, as systemctl's tables
// do; the other columns are never cut.
class Table {
public:
    enum class Align { Left, Right };

    struct Column {
        std::string header;
        Align align = Align::Left;
        // For free text (a trigger, a request, a device): the share of the excess width this
        // column gives up, relative to the others'; 0 for a column that is never cut.
        unsigned shrinkWeight = 0;
        std::size_t minWidth = 0;  // cut no narrower than this, nor than the header
    };

    explicit Table(std::vector<Column> columns);

    // Missing cells are printed empty, surplus cells are dropped. colors, when given, colours
    // each cell (on a terminal that takes colours).
    void addRow(std::vector<std::string> cells, std::vector<Color> colors = {});

    std::size_t rowCount() const { return rows_.size(); }

    // One line per row, '\n'-terminated, the header line first when withHeader is set. No line
    // ends in padding. A line is wider than layout.width only if the columns that are never cut
    // do not fit in it.
    std::string format(bool withHeader, const TableLayout &layout = {}) const;

private:
    std::vector<std::size_t> columnWidths(bool withHeader, std::size_t width) const;

    std::vector<Column> columns_;
    std::vector<std::vector<std::string>> rows_;
    std::vector<std::vector<Color>> colors_;
};

// text cut to at most width columns, ending in "…" (or "..." without UTF-8) when it was cut.
std::string ellipsize(std::string_view text, std::size_t width, bool utf8);

// "Key: value" lines with the keys right-aligned on the colon, as hostnamectl prints them.
// Values are escaped like table cells; keys are trusted. A value with newlines continues on lines
// indented to the values' column. colors, when given, colours each value.
std::string formatKeyValueLines(const std::vector<std::pair<std::string, std::string>> &lines,
                                const std::vector<Color> &colors = {}, bool useColors = false);

}  // namespace lkmd::client
