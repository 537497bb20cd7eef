// SPDX-License-Identifier: LGPL-2.1-or-later
#include "kernel_state.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <system_error>

#include "request_name.h"

namespace lkmd {
namespace {

std::vector<std::string_view> splitWords(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t pos = 0;
    while (pos < line.size()) {
        const std::size_t start = line.find_first_not_of(" \t", pos);
        if (start == std::string_view::npos)
            break;
        std::size_t end = line.find_first_of(" \t", start);
        if (end == std::string_view::npos)
            end = line.size();
        words.push_back(line.substr(start, end - start));
        pos = end;
    }
    return words;
}

template <typename Number>
bool parseNumber(std::string_view text, Number *value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    return ec == std::errc() && end == text.data() + text.size();
}

bool parseState(std::string_view text, LoadState *state) {
    if (text == "Live")
        *state = LoadState::Live;
    else if (text == "Loading")
        *state = LoadState::Coming;
    else if (text == "Unloading")
        *state = LoadState::Going;
    else
        return false;
    return true;
}

}  // namespace

const char *loadStateName(LoadState state) {
    switch (state) {
        case LoadState::Live:
            return "live";
        case LoadState::Coming:
            return "coming";
        case LoadState::Going:
            return "going";
    }
    return "unknown";
}

// Format (kernel/module/procfs.c): "name size refcnt holder,holder, state address [taints]",
// refcnt and holders "-" when the kernel was built without module unloading.
std::vector<LoadedModule> parseProcModules(std::string_view text) {
    std::vector<LoadedModule> modules;
    while (!text.empty()) {
        const std::size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);

        const std::vector<std::string_view> words = splitWords(line);
        if (words.size() < 5)
            continue;

        // Names the kernel gives go into sysfs paths and onto the bus: a line naming something
        // no module could be called is malformed.
        LoadedModule module;
        module.name = std::string(words[0]);
        if (whyInvalidModuleName(module.name) != nullptr)
            continue;
        if (!parseNumber(words[1], &module.size))
            continue;
        if (words[2] != "-" && (!parseNumber(words[2], &module.refcnt) || module.refcnt < 0))
            continue;
        if (words[3] != "-") {
            std::string_view holders = words[3];
            while (!holders.empty()) {
                const std::size_t comma = holders.find(',');
                const std::string_view holder = holders.substr(0, comma);
                if (!holder.empty() && whyInvalidModuleName(holder) == nullptr)
                    module.holders.emplace_back(holder);
                if (comma == std::string_view::npos)
                    break;
                holders.remove_prefix(comma + 1);
            }
        }
        if (!parseState(words[4], &module.state))
            continue;
        modules.push_back(std::move(module));
    }
    return modules;
}

std::optional<std::string> parseStaticUsermodeHelper(std::string_view kernelConfig) {
    bool enabled = false;
    std::string path;
    constexpr std::string_view kEnabled = "CONFIG_STATIC_USERMODEHELPER=y";
    constexpr std::string_view kPath = "CONFIG_STATIC_USERMODEHELPER_PATH=";
    while (!kernelConfig.empty()) {
        const std::size_t end = kernelConfig.find('\n');
        std::string_view line = kernelConfig.substr(0, end);
        kernelConfig.remove_prefix(end == std::string_view::npos ? kernelConfig.size() : end + 1);
        if (line == kEnabled) {
            enabled = true;
        } else if (line.starts_with(kPath)) {
            line.remove_prefix(kPath.size());
            if (line.size() >= 2 && line.front() == '"' && line.back() == '"')
                line = line.substr(1, line.size() - 2);
            path = std::string(line);
        }
    }
    return enabled ? std::optional<std::string>(path) : std::nullopt;
}

KernelState::KernelState(std::filesystem::path procfs, std::filesystem::path sysfs)
    : procfs_(std::move(procfs)), sysfs_(std::move(sysfs)) {}

int KernelState::readLoaded(std::vector<LoadedModule> *modules) const {
    std::ifstream file(procfs_ / "modules");
    if (!file) {
        const int error = errno;
        return error != 0 ? -error : -EIO;
    }
    std::ostringstream text;
    text << file.rdbuf();
    *modules = parseProcModules(text.str());
    return 0;
}

namespace {

// A driver directory holds one symlink per bound device next to attribute files and the "module"
// link.
void appendBoundDevices(const std::filesystem::path &driverDir, std::vector<std::string> *devices) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const fs::directory_entry &entry : fs::directory_iterator(driverDir, ec)) {
        const std::string name = entry.path().filename().string();
        std::error_code linkEc;
        if (name == "module" || !entry.is_symlink(linkEc))
            continue;
        devices->push_back(name);
    }
}

}  // namespace

// /sys/module/M/drivers/<bus>:<driver> links to /sys/bus/<bus>/drivers/<driver>/. Some buses
// (pnp, for one) register drivers without an owner: those get no "module" link and no entry
// under /sys/module/M/drivers, so a driver of the module's own name without a "module" link is
// taken as the module's too. Keeping a module too long is the safe side of that guess.
// Names become paths below: one that is no module's own name ("usb:../../x" is a valid request)
// has nothing to read.
ModuleBindings KernelState::readBindings(const std::string &module) const {
    namespace fs = std::filesystem;
    ModuleBindings bindings;
    if (whyInvalidModuleName(module) != nullptr)
        return bindings;
    std::error_code ec;
    for (const fs::directory_entry &driver :
         fs::directory_iterator(sysfs_ / "module" / module / "drivers", ec)) {
        bindings.drivers.push_back(driver.path().filename().string());
        appendBoundDevices(driver.path(), &bindings.devices);
    }

    std::string dashed = module;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    for (const fs::directory_entry &bus : fs::directory_iterator(sysfs_ / "bus", ec)) {
        for (const std::string &name : {module, dashed}) {
            const fs::path driverDir = bus.path() / "drivers" / name;
            std::error_code statEc;
            if (!fs::is_directory(driverDir, statEc) ||
                fs::is_symlink(driverDir / "module", statEc))
                continue;
            const std::string busAndDriver = bus.path().filename().string() + ":" + name;
            if (std::find(bindings.drivers.begin(), bindings.drivers.end(), busAndDriver) !=
                bindings.drivers.end())
                continue;
            bindings.drivers.push_back(busAndDriver);
            appendBoundDevices(driverDir, &bindings.devices);
        }
    }
    std::sort(bindings.drivers.begin(), bindings.drivers.end());
    std::sort(bindings.devices.begin(), bindings.devices.end());
    return bindings;
}

bool KernelState::deviceExists(const std::string &devpath) const {
    if (!devpath.starts_with("/devices/") || devpath.find("..") != std::string::npos)
        return false;
    std::error_code ec;
    return std::filesystem::is_directory(sysfs_ / devpath.substr(1), ec);
}

std::uint64_t KernelState::moduleIdentity(const std::string &module) const {
    if (whyInvalidModuleName(module) != nullptr)
        return 0;
    struct stat st {};
    if (stat((sysfs_ / "module" / module).c_str(), &st) < 0)
        return 0;
    return st.st_ino;
}

std::string KernelState::readModprobePath() const {
    std::ifstream file(procfs_ / "sys" / "kernel" / "modprobe");
    std::string path;
    std::getline(file, path);
    return path;
}

}  // namespace lkmd
