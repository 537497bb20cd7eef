// SPDX-License-Identifier: LGPL-2.1-or-later
#include "service_status.h"

#include <sys/stat.h>
#include <sys/utsname.h>

#include <fstream>
#include <sstream>

#include "kernel_state.h"

namespace lkmd {

std::vector<std::string> readStaticUsermodeHelper() {
    struct utsname name = {};
    if (uname(&name) < 0)
        return {};
    std::ifstream file(std::string("/boot/config-") + name.release);
    if (!file)
        return {};
    std::ostringstream text;
    text << file.rdbuf();
    const std::optional<std::string> path = parseStaticUsermodeHelper(text.str());
    return path ? std::vector<std::string>{*path} : std::vector<std::string>{};
}

bool sameFile(const std::string &a, const std::string &b) {
    struct stat first = {};
    struct stat second = {};
    if (a.empty() || b.empty() || stat(a.c_str(), &first) < 0 || stat(b.c_str(), &second) < 0)
        return false;
    return first.st_dev == second.st_dev && first.st_ino == second.st_ino;
}

}  // namespace lkmd
