// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fallback_compile.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include "fallback_policy.h"
#include "request_name.h"

namespace lkmd {
namespace {

// "kernel/fs/fat/vfat.ko.xz" is vfat.
std::string moduleOfPath(std::string_view path) {
    std::string_view name = path.substr(path.rfind('/') + 1);
    name = name.substr(0, name.find(".ko"));
    return normalizeModuleName(name);
}

bool enforced(const Rule &rule, const Policy &policy) {
    return !rule.allows && rule.mode.value_or(policy.mode) == PolicyMode::Enforce;
}

std::set<std::string> matching(const std::vector<Pattern> &patterns, const ModuleIndex &index) {
    std::set<std::string> found;
    for (const Pattern &pattern : patterns)
        for (const std::string &module : index.modules)
            if (pattern.matches(module))
                found.insert(module);
    return found;
}

void addNameAndAliases(const std::string &module, const ModuleIndex &index,
                       std::set<std::string> *globs) {
    globs->insert(module);
    std::string dashed = module;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    globs->insert(dashed);
    for (const auto &[pattern, owner] : index.aliases)
        if (owner == module)
            globs->insert(pattern);
}

}  // namespace

int readModuleIndex(const std::filesystem::path &moduleDir, ModuleIndex *index) {
    std::filesystem::path dir = moduleDir;
    if (dir.empty()) {
        utsname name{};
        if (uname(&name) < 0)
            return -errno;
        dir = std::filesystem::path("/lib/modules") / name.release;
    }
    std::ifstream dep(dir / "modules.dep");
    if (!dep)
        return errno != 0 ? -errno : -ENOENT;
    std::string line;
    while (std::getline(dep, line)) {
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        const std::string module = moduleOfPath(std::string_view(line).substr(0, colon));
        index->modules.push_back(module);
        std::istringstream needs(line.substr(colon + 1));
        std::string path;
        std::vector<std::string> &dependencies = index->dependencies[module];
        while (needs >> path)
            dependencies.push_back(moduleOfPath(path));
    }
    std::ifstream alias(dir / "modules.alias");
    while (std::getline(alias, line)) {
        std::istringstream fields(line);
        std::string keyword, pattern, module;
        if (fields >> keyword >> pattern >> module && keyword == "alias")
            index->aliases.emplace_back(pattern, normalizeModuleName(module));
    }
    return 0;
}

bool needsModuleIndex(const Policy &policy) {
    return !policy.denyModules.empty() || !policy.rules.empty() ||
           (policy.hasAllowList() && policy.mode == PolicyMode::Enforce);
}

std::string refusalInstallCommand(const std::string &module) {
    return "/bin/sh -c 'echo \"" + module +
           " is refused by the policy of lkmd(8): lkmctl explain " + module + "\" >&2; exit 1'";
}

FallbackFiles compileFallback(const Policy &policy, const ModuleIndex &index) {
    // Refused to everyone, kmod included: [Deny] and enforced rules for anyone.
    std::set<std::string> refusedToAll = matching(policy.denyModules, index);
    // Refused by the helper: those, and the modules of every enforced rule.
    std::set<std::string> refused = refusedToAll;
    fallback::Rules rules;
    std::set<std::string> denyGlobs;
    for (const Pattern &pattern : policy.denyRequests)
        denyGlobs.insert(pattern.glob);
    // lkmd's own libkmod reads modprobe.d too: a module some requester may still have (an
    // exception, an allow rule) must not be refused there.
    std::set<std::string> sometimesAllowed;
    for (const Rule &rule : policy.rules)
        if (rule.allows) {
            const std::set<std::string> modules = matching(rule.modules, index);
            sometimesAllowed.insert(modules.begin(), modules.end());
        }
    for (const Rule &rule : policy.rules) {
        if (!enforced(rule, policy))
            continue;
        const std::set<std::string> modules = matching(rule.modules, index);
        refused.insert(modules.begin(), modules.end());
        if (rule.requesters.empty() && rule.except.empty())
            for (const std::string &module : modules)
                if (sometimesAllowed.count(module) == 0)
                    refusedToAll.insert(module);
        for (const Pattern &pattern : rule.requests)
            denyGlobs.insert(pattern.glob);
    }
    // What needs a refused module is refused with it: the helper cannot plan a load.
    std::set<std::string> needing;
    for (const auto &[module, dependencies] : index.dependencies)
        for (const std::string &dependency : dependencies)
            if (refused.count(dependency) != 0)
                needing.insert(module);
    refused.insert(needing.begin(), needing.end());
    for (const std::string &module : refused)
        addNameAndAliases(module, index, &denyGlobs);
    rules.deny.assign(denyGlobs.begin(), denyGlobs.end());

    if (policy.hasAllowList() && policy.mode == PolicyMode::Enforce) {
        std::set<std::string> allowGlobs;
        for (const Pattern &pattern : policy.allow)
            allowGlobs.insert(pattern.glob);
        for (const std::string &module : matching(policy.allow, index))
            addNameAndAliases(module, index, &allowGlobs);
        rules.allow.assign(allowGlobs.begin(), allowGlobs.end());
    }

    FallbackFiles files;
    files.helperPolicy = fallback::serialize(rules);
    if (!refusedToAll.empty()) {
        files.modprobeConf =
            "# Generated by lkmd(8) from its policy (lkmd.conf(5)): kmod refuses these too, so\n"
            "# that they stay refused while lkmd does not answer and to `modprobe`. Removed with\n"
            "# lkmd; rewritten when its configuration is reloaded.\n";
        for (const std::string &module : refusedToAll)
            if (whyInvalidModuleName(module) == nullptr)  // nothing for the shell to read
                files.modprobeConf +=
                    "install " + module + " " + refusalInstallCommand(module) + "\n";
    }
    return files;
}

}  // namespace lkmd
