// SPDX-License-Identifier: LGPL-2.1-or-later
#include "use_probe.h"

#include <cerrno>
#include <cstring>

#include "log.h"

namespace lkmd {

std::map<std::string, UseFacts> UseProbe::gather(const std::vector<ProbeTarget> &targets,
                                                 ModuleBackend &backend) const {
    std::map<std::string, UseFacts> facts;
    std::vector<LoadedModule> loaded;
    const int r = kernel_.readLoaded(&loaded);
    if (r < 0)
        logger("autoclean")->warn("Could not read the loaded modules: {}", std::strerror(-r));
    std::map<std::string, const LoadedModule *> rows;
    for (const LoadedModule &row : loaded)
        rows[row.name] = &row;

    bool someIdle = false;
    for (const ProbeTarget &target : targets) {
        UseFacts &use = facts[target.module];
        auto row = rows.find(target.module);
        // Unreadable /proc/modules: everything counts as in use, never as idle.
        use.loaded = r < 0 || row != rows.end();
        if (row != rows.end())
            use.row = *row->second;
        else if (r < 0)
            use.row.refcnt = -1;
        use.identity = kernel_.moduleIdentity(target.module);
        use.boundDevices = kernel_.readBindings(target.module).devices;
        if (!target.deviceLoadedFor.empty() && kernel_.deviceExists(target.deviceLoadedFor))
            use.presentDevice = target.deviceLoadedFor;
        someIdle = someIdle || usesOf(use, true).empty();
    }
    // A link holds no reference on the module that provides its kind, and unloading that module
    // deletes the link (dummy, bridge): a netlink dump, only when something would otherwise go.
    if (!someIdle || !linkKinds_)
        return facts;
    std::set<std::string> kinds;
    if (linkKinds_(&kinds) < 0) {
        // Unknown links: nothing that might provide one goes this time.
        for (auto &[module, use] : facts)
            use.liveLinkKind = std::string(kUnlistedLinks);
        return facts;
    }
    for (const std::string &kind : kinds) {
        std::vector<std::string> providers;
        if (backend.resolve("rtnl-link-" + kind, &providers) < 0)
            continue;
        for (const std::string &provider : providers) {
            auto use = facts.find(provider);
            if (use != facts.end())
                use->second.liveLinkKind = kind;
        }
    }
    return facts;
}

}  // namespace lkmd
