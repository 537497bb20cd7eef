// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lkmd::client {

// A text table whose columns are as wide as their widest cell. Cells are raw text: the table
// escapes them (escapeForTerminal()), so bus data can be passed in as received.
class Table {
public:
    enum class Align { Left, Right };

    struct Column {
        std::string header;
        Align align = Align::Left;
    };

    explicit Table(std::vector<Column> columns);

    // Missing cells are printed empty, surplus cells are dropped.
    void addRow(std::vector<std::string> cells);

    std::size_t rowCount() const { return rows_.size(); }

    // One line per row, '\n'-terminated, the header line first when withHeader is set. No line
    // ends in padding.
    std::string format(bool withHeader) const;

private:
    std::vector<Column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

// "Key: value" lines with the keys right-aligned on the colon, as hostnamectl prints them.
// Values are escaped like table cells; keys are trusted.
std::string formatKeyValueLines(const std::vector<std::pair<std::string, std::string>> &lines);

}  // namespace lkmd::client
