// SPDX-License-Identifier: LGPL-2.1-or-later
#include "why_chain.h"

#include "text.h"

namespace lkmd::client {

std::vector<WhyLink> whyChain(const ModuleInfo &module) {
    std::vector<WhyLink> chain{{"module", module.name}};
    if (module.origin.empty() || module.origin == "external") {
        chain.push_back({"external",
                         "loaded outside lkmd (modprobe, an administrator or the boot): "
                         "lkmd has no record of who asked"});
        return chain;
    }
    if (!module.neededBy.empty() && module.neededAs != "requested")
        chain.push_back({"dependency", module.neededAs + " of " + module.neededBy});
    // The request by its own name adds nothing when it is the module's ("dummy" for dummy).
    const bool sameName = module.trigger == module.name && module.neededBy.empty();
    if (module.origin == "hotplug" || module.origin == "coldplug") {
        if (!module.trigger.empty() && !sameName)
            chain.push_back({"request", module.trigger});
        std::string device =
            module.origin + " of " + (module.device.empty() ? "a device" : module.device);
        if (!module.subsystem.empty())
            device += " (" + module.subsystem + ")";
        chain.push_back({"device", device});
        return chain;
    }
    if (!module.trigger.empty() && !sameName)
        chain.push_back({"request", module.origin == "bus" ? module.trigger + " (over D-Bus)"
                                                           : module.trigger});
    else if (module.origin == "bus")
        chain.push_back({"request", "a D-Bus call"});
    chain.push_back({"requester", module.requester.description.empty()
                                      ? std::string("unknown")
                                      : module.requester.description});
    return chain;
}

std::string formatWhyChain(const std::vector<WhyLink> &chain, bool utf8) {
    std::string text;
    for (const WhyLink &link : chain) {
        if (!text.empty())
            text += utf8 ? " \u2190 " : " <- ";
        text += escapeForTerminal(link.text);
    }
    return text + "\n";
}

nlohmann::ordered_json whyChainJson(const ModuleInfo &module, const std::vector<WhyLink> &chain) {
    nlohmann::ordered_json links = nlohmann::ordered_json::array();
    for (const WhyLink &link : chain)
        links.push_back({{"kind", link.kind}, {"text", link.text}});
    const RequesterInfo &who = module.requester;
    nlohmann::ordered_json requester = nullptr;
    if (module.origin == "kernel" || module.origin == "bus")
        requester = {
            {"known", who.known},
            {"unknown_because", who.unknownBecause},
            {"pid", who.pid},
            {"comm", who.comm},
            {"uid", who.uid},
            {"unit", who.unit},
            {"user_namespace", who.userNamespace},
            {"call_site", who.callSite},
            {"from_init_of", who.fromInitOf},
        };
    return {{"module", module.name},
            {"origin", module.origin},
            {"chain", links},
            {"requester", requester}};
}

}  // namespace lkmd::client
