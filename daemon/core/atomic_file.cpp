// SPDX-License-Identifier: LGPL-2.1-or-later
#include "atomic_file.h"

#include <cerrno>
#include <fstream>
#include <system_error>

namespace lkmd {

int writeFileAtomically(const std::filesystem::path &path, std::string_view text) {
    const std::filesystem::path temporary = path.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << text;
        if (!out.flush())
            return errno != 0 ? -errno : -EIO;
    }
    std::error_code ec;
    std::filesystem::rename(temporary, path, ec);
    return ec ? -ec.value() : 0;
}

}  // namespace lkmd
