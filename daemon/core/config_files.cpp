// SPDX-License-Identifier: LGPL-2.1-or-later
// Which configuration files count, in which order: systemd's rules for drop-ins
// (systemd.unit(5), "Drop-in directories"), applied to lkmd.conf.
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "config.h"

namespace lkmd {
namespace {

namespace fs = std::filesystem;

// A link to /dev/null or an empty file masks a drop-in of the same name in a lower directory.
bool masked(const fs::path &path) {
    std::error_code ec;
    if (fs::is_symlink(path, ec) && fs::read_symlink(path, ec) == "/dev/null")
        return true;
    return fs::is_regular_file(path, ec) && fs::file_size(path, ec) == 0;
}

void readFile(const fs::path &path, Config *config, std::vector<ConfigDiagnostic> *diagnostics,
              const std::string &profile = {}) {
    std::ifstream in(path);
    if (!in) {
        diagnostics->push_back({path.string(), 0, "cannot be read, ignoring it"});
        return;
    }
    std::ostringstream text;
    text << in.rdbuf();
    config->files.push_back(path.string());
    parseConfigText(text.str(), path.string(), config, diagnostics, profile);
}

}  // namespace

Config loadConfig(const ConfigSearch &search, std::vector<ConfigDiagnostic> *diagnostics) {
    Config config;
    std::error_code ec;
    for (const fs::path &dir : search.dirs) {
        const fs::path main = dir / "lkmd.conf";
        if (fs::exists(main, ec) || fs::is_symlink(main, ec)) {
            if (!masked(main) && fs::is_regular_file(main, ec))
                readFile(main, &config, diagnostics);
            break;  // the highest one there is counts, masked or not
        }
    }

    std::map<std::string, fs::path> dropIns;  // by file name: the highest directory's
    for (auto dir = search.dirs.rbegin(); dir != search.dirs.rend(); ++dir)
        for (const fs::directory_entry &entry : fs::directory_iterator(*dir / "lkmd.conf.d", ec))
            if (entry.path().extension() == ".conf")
                dropIns[entry.path().filename().string()] = entry.path();
    for (const auto &[name, path] : dropIns) {
        std::error_code entryEc;
        if (masked(path))
            continue;
        if (!fs::is_regular_file(path, entryEc)) {
            diagnostics->push_back({path.string(), 0, "not a regular file, ignoring it"});
            continue;
        }
        readFile(path, &config, diagnostics);
    }

    // A profile enabled twice counts once, with the last mode given.
    std::vector<ProfileUse> uses;
    for (auto use = config.profiles.rbegin(); use != config.profiles.rend(); ++use)
        if (std::none_of(uses.begin(), uses.end(),
                         [&](const ProfileUse &seen) { return seen.name == use->name; }))
            uses.insert(uses.begin(), *use);
    config.profiles = uses;
    for (const ProfileUse &use : uses) {
        const auto found =
            std::find_if(search.dirs.begin(), search.dirs.end(), [&](const fs::path &dir) {
                std::error_code existsEc;
                return fs::is_regular_file(dir / "profiles" / (use.name + ".conf"), existsEc);
            });
        if (found == search.dirs.end()) {
            const std::size_t colon = use.where.rfind(':');
            diagnostics->push_back({use.where.substr(0, colon),
                                    std::stoi(use.where.substr(colon + 1)),
                                    "no profile named '" + use.name + "', ignoring it"});
            continue;
        }
        const std::size_t before = config.policy.rules.size();
        readFile(*found / "profiles" / (use.name + ".conf"), &config, diagnostics, use.name);
        for (std::size_t i = before; i < config.policy.rules.size(); ++i)
            config.policy.rules[i].mode = use.mode;
    }
    return config;
}

}  // namespace lkmd
