// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fake_kernel.h"

#include <fnmatch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "request_name.h"

namespace lkmd {
namespace {

std::vector<std::string> splitList(const std::string &text) {
    std::vector<std::string> items;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ','))
        if (!item.empty())
            items.push_back(item);
    return items;
}

int errnoFromName(const std::string &name) {
    static const std::map<std::string, int> kNames = {
        {"ENODEV", ENODEV},   {"ENOENT", ENOENT}, {"EINVAL", EINVAL}, {"EIO", EIO},
        {"ENOEXEC", ENOEXEC}, {"EPERM", EPERM},   {"ENOMEM", ENOMEM}, {"EBUSY", EBUSY},
    };
    auto it = kNames.find(name);
    return it == kNames.end() ? 0 : it->second;
}

bool parseInt(const std::string &text, int *value) {
    char *end = nullptr;
    errno = 0;
    const long parsed = std::strtol(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str() || *end != '\0' || parsed < 0 || parsed > 1000000)
        return false;
    *value = static_cast<int>(parsed);
    return true;
}

bool parseModuleOption(const std::string &key, const std::string &value, FakeKernel::Module *m) {
    if (key == "deps")
        m->deps = splitList(value);
    else if (key == "softdeps")
        m->softdeps = splitList(value);
    else if (key == "aliases")
        m->aliases = splitList(value);
    else if (key == "init_ms")
        return parseInt(value, &m->initMs);
    else if (key == "refcnt")
        return parseInt(value, &m->refcnt);
    else if (key == "init_error")
        return (m->initError = errnoFromName(value)) != 0;
    else if (key == "device")
        m->devices.push_back(value);
    else
        return false;
    return true;
}

}  // namespace

std::shared_ptr<FakeKernel> FakeKernel::load(const std::filesystem::path &world,
                                             std::filesystem::path procfs,
                                             std::filesystem::path sysfs, int *error,
                                             std::string *detail) {
    std::ifstream file(world);
    if (!file) {
        *error = errno != 0 ? -errno : -EIO;
        *detail = world.string();
        return nullptr;
    }
    std::shared_ptr<FakeKernel> kernel(new FakeKernel(std::move(procfs), std::move(sysfs)));
    std::vector<std::string> preloaded;
    std::string line;
    for (int number = 1; std::getline(file, line); ++number) {
        std::stringstream words(line.substr(0, line.find('#')));
        std::string verb;
        std::string name;
        if (!(words >> verb))
            continue;
        auto fail = [&](const std::string &why) {
            *error = -EINVAL;
            *detail = world.string() + ":" + std::to_string(number) + ": " + why;
            return nullptr;
        };
        if (!(words >> name))
            return fail("'" + verb + "' needs a module name");
        name = normalizeModuleName(name);

        Module module;
        std::string option;
        while (words >> option) {
            const std::size_t equals = option.find('=');
            if (equals == std::string::npos ||
                !parseModuleOption(option.substr(0, equals), option.substr(equals + 1), &module))
                return fail("bad option '" + option + "'");
        }
        if (verb == "module") {
            for (std::string &dep : module.deps)
                dep = normalizeModuleName(dep);
            for (std::string &dep : module.softdeps)
                dep = normalizeModuleName(dep);
            kernel->modules_[name] = std::move(module);
        } else if (verb == "builtin") {
            kernel->builtinAliases_[name] = module.aliases;
        } else if (verb == "blacklist") {
            kernel->blacklist_.insert(name);
        } else if (verb == "loaded") {
            preloaded.push_back(name);
        } else {
            return fail("unknown statement '" + verb + "'");
        }
    }

    for (const std::string &name : preloaded) {
        std::vector<PlanStep> steps;
        int r = kernel->plan(name, &steps);
        for (const PlanStep &step : steps)
            if (r == 0)
                r = kernel->insert(step);
        if (r < 0 || kernel->state(name) != ModuleState::Live) {
            *error = -EINVAL;
            *detail = world.string() + ": 'loaded " + name + "' names no loadable module";
            return nullptr;
        }
    }
    std::lock_guard guard(kernel->lock_);
    kernel->publishLocked();
    return kernel;
}

FakeKernel::FakeKernel(std::filesystem::path procfs, std::filesystem::path sysfs)
    : procfs_(std::move(procfs)), sysfs_(std::move(sysfs)) {}

int FakeKernel::resolve(const std::string &request, std::vector<std::string> *modules) {
    std::lock_guard guard(lock_);
    const std::string name = normalizeModuleName(request);
    if (modules_.count(name) != 0 || builtinAliases_.count(name) != 0) {
        *modules = {name};
        return 0;
    }
    // modules.alias patterns are shell globs matched against the request as given.
    std::vector<std::string> matches;
    auto collect = [&](const std::string &module, const std::vector<std::string> &aliases) {
        for (const std::string &alias : aliases)
            if (fnmatch(alias.c_str(), request.c_str(), 0) == 0) {
                if (blacklist_.count(module) == 0)
                    matches.push_back(module);
                return;
            }
    };
    for (const auto &[module, info] : modules_)
        collect(module, info.aliases);
    for (const auto &[module, aliases] : builtinAliases_)
        collect(module, aliases);
    if (matches.empty())
        return -ENOENT;
    *modules = std::move(matches);
    return 0;
}

std::vector<std::string> FakeKernel::hiddenByBlacklist(const std::string &request) {
    std::lock_guard guard(lock_);
    if (modules_.count(normalizeModuleName(request)) != 0)
        return {};
    std::vector<std::string> hidden;
    for (const auto &[module, info] : modules_)
        for (const std::string &alias : info.aliases)
            if (blacklist_.count(module) != 0 && fnmatch(alias.c_str(), request.c_str(), 0) == 0) {
                hidden.push_back(module);
                break;
            }
    return hidden;
}

void FakeKernel::installLater(const std::string &name, Module module) {
    std::lock_guard guard(lock_);
    notIndexed_[name] = std::move(module);
}

bool FakeKernel::reindex(std::uint64_t since) {
    std::lock_guard guard(lock_);
    if (!notIndexed_.empty()) {
        modules_.merge(notIndexed_);
        notIndexed_.clear();
        ++indexGeneration_;
    }
    return indexGeneration_ != since;
}

std::uint64_t FakeKernel::indexGeneration() {
    std::lock_guard guard(lock_);
    return indexGeneration_;
}

ModuleState FakeKernel::state(const std::string &module) {
    std::lock_guard guard(lock_);
    if (builtinAliases_.count(module) != 0)
        return ModuleState::Builtin;
    if (coming_.count(module) != 0)
        return ModuleState::Coming;
    if (std::find(loaded_.begin(), loaded_.end(), module) != loaded_.end())
        return ModuleState::Live;
    return ModuleState::Absent;
}

// What modprobe's dry run would print with KMOD_PROBE_IGNORE_LOADED: soft dependencies,
// dependencies, the module; each once. The module and its dependencies are required, soft ones
// not.
int FakeKernel::plan(const std::string &name, std::vector<PlanStep> *steps) {
    const std::string module = normalizeModuleName(name);
    std::lock_guard guard(lock_);
    steps->clear();
    if (builtinAliases_.count(module) != 0)
        return 0;
    if (modules_.count(module) == 0)
        return -ENOENT;
    planLocked(module, true, steps);
    return 0;
}

void FakeKernel::planLocked(const std::string &module, bool required,
                            std::vector<PlanStep> *plan) const {
    auto planned = std::find_if(plan->begin(), plan->end(),
                                [&](const PlanStep &step) { return step.module == module; });
    if (planned != plan->end()) {
        planned->required = planned->required || required;
        return;
    }
    if (builtinAliases_.count(module) != 0 || modules_.count(module) == 0)
        return;
    const Module &info = modules_.at(module);
    for (const std::string &softdep : info.softdeps)
        planLocked(softdep, false, plan);
    for (const std::string &dep : info.deps)
        planLocked(dep, required, plan);
    plan->push_back({module, {}, false, required});
}

int FakeKernel::index(ModuleIndex *index) {
    std::lock_guard guard(lock_);
    for (const auto &[name, module] : modules_) {
        index->modules.push_back(name);
        index->dependencies[name] = module.deps;
        for (const std::string &alias : module.aliases)
            index->aliases.emplace_back(alias, name);
    }
    return 0;
}

void FakeKernel::holdInit(const std::string &module) {
    std::lock_guard guard(lock_);
    coming_.insert(module);
    held_.insert(module);
    publishLocked();
}

int FakeKernel::insert(const PlanStep &step) {
    const std::string &module = step.module;
    if (insertHook_)
        insertHook_(module);
    std::unique_lock guard(lock_);
    auto it = modules_.find(module);
    if (it == modules_.end())
        return builtinAliases_.count(module) != 0 ? -EEXIST : -ENOENT;
    if (held_.erase(module) != 0)
        coming_.erase(module);  // this insertion is the one holdInit() stood for
    // A second finit_module of a module whose init runs waits for it, like the kernel does.
    changed_.wait(guard, [&] { return coming_.count(module) == 0; });
    if (std::find(loaded_.begin(), loaded_.end(), module) != loaded_.end())
        return -EEXIST;
    for (const std::string &dep : it->second.deps)
        if (std::find(loaded_.begin(), loaded_.end(), dep) == loaded_.end() &&
            builtinAliases_.count(dep) == 0)
            return -ENOENT;  // "Unknown symbol in module"

    const Module info = it->second;
    coming_.insert(module);
    publishLocked();
    if (info.initMs > 0) {
        guard.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(info.initMs));
        guard.lock();
    }
    coming_.erase(module);
    changed_.notify_all();
    if (info.initError != 0) {
        publishLocked();
        return -info.initError;
    }
    loaded_.push_back(module);
    publishLocked();
    return 0;
}

int FakeKernel::refcntLocked(const std::string &module) const {
    int refcnt = modules_.at(module).refcnt;
    for (const std::string &other : loaded_) {
        const std::vector<std::string> &deps = modules_.at(other).deps;
        refcnt += static_cast<int>(std::count(deps.begin(), deps.end(), module));
    }
    return refcnt;
}

int FakeKernel::remove(const std::string &name) {
    const std::string module = normalizeModuleName(name);
    std::lock_guard guard(lock_);
    auto it = std::find(loaded_.begin(), loaded_.end(), module);
    if (it == loaded_.end())
        return -ENOENT;
    if (refcntLocked(module) > 0)
        return -EAGAIN;  // delete_module(O_NONBLOCK) on a module in use
    loaded_.erase(it);
    publishLocked();
    return 0;
}

// Written in full each time; /proc/modules goes through rename() so readers never see half a file.
void FakeKernel::publishLocked() {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::ostringstream text;
    // A module in its init is listed too, as "Loading", as the kernel lists it.
    for (const std::string &module : coming_)
        text << module << " 16384 0 - Loading 0x0000000000000000\n";
    for (auto it = loaded_.rbegin(); it != loaded_.rend(); ++it) {
        std::string holders;
        for (const std::string &other : loaded_) {
            const std::vector<std::string> &deps = modules_.at(other).deps;
            if (std::find(deps.begin(), deps.end(), *it) != deps.end())
                holders += other + ",";
        }
        text << *it << " 16384 " << refcntLocked(*it) << " " << (holders.empty() ? "-" : holders)
             << " Live 0x0000000000000000\n";
    }
    fs::create_directories(procfs_, ec);
    const fs::path temporary = procfs_ / ".modules.tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << text.str();
    }
    fs::rename(temporary, procfs_ / "modules", ec);

    for (const auto &[module, info] : modules_) {
        const fs::path moduleDir = sysfs_ / "module" / module;
        const bool isLoaded = std::find(loaded_.begin(), loaded_.end(), module) != loaded_.end();
        for (const std::string &device : info.devices) {
            const std::size_t first = device.find(':');
            const std::size_t second = device.find(':', first + 1);
            if (first == std::string::npos || second == std::string::npos)
                continue;
            const std::string bus = device.substr(0, first);
            const std::string driver = device.substr(first + 1, second - first - 1);
            const fs::path driverDir = sysfs_ / "bus" / bus / "drivers" / driver;
            fs::create_directories(driverDir, ec);
            const fs::path deviceLink = driverDir / device.substr(second + 1);
            const fs::path driverLink = moduleDir / "drivers" / (bus + ":" + driver);
            if (isLoaded) {
                fs::create_directories(moduleDir / "drivers", ec);
                fs::create_directory_symlink(driverDir, driverLink, ec);
                fs::create_symlink("../../../../devices/fake", deviceLink, ec);
            } else {
                fs::remove(deviceLink, ec);
            }
        }
        // The directory stays from init to unload: its inode is the load's identity.
        if (isLoaded || coming_.count(module) != 0) {
            fs::create_directories(moduleDir, ec);
            std::ofstream(moduleDir / "initstate") << (isLoaded ? "live\n" : "coming\n");
        } else {
            fs::remove_all(moduleDir, ec);
        }
    }
}

}  // namespace lkmd
