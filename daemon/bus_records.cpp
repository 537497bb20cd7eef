// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bus_records.h"

#include "sd_ptr.h"

namespace lkmd {

int appendString(sd_bus_message *m, const char *key, const std::string &value) {
    return sd_bus_message_append(m, "{sv}", key, "s", value.c_str());
}

int appendStringList(sd_bus_message *m, const char *key, const std::vector<std::string> &values) {
    int r = sd_bus_message_open_container(m, 'e', "sv");
    if (r >= 0)
        r = sd_bus_message_append_basic(m, 's', key);
    if (r >= 0)
        r = sd_bus_message_open_container(m, 'v', "as");
    if (r >= 0)
        r = sd_bus_message_open_container(m, 'a', "s");
    for (const std::string &value : values)
        if (r >= 0)
            r = sd_bus_message_append_basic(m, 's', value.c_str());
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    return r;
}

namespace {

// The Requester* keys documented in org.lkmd1.Manager.xml.
int appendRequester(sd_bus_message *m, const Requester &who) {
    int r = appendString(m, "Requester", who.describe());
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "RequesterKnown", "b", who.known);
    if (r >= 0)
        r = appendString(m, "RequesterUnknownBecause", who.unknownBecause);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "RequesterPid", "i", who.pid);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "RequesterKernelThread", "b", who.kernelThread);
    if (r >= 0)
        r = appendString(m, "RequesterComm", who.comm);
    if (r >= 0)
        r = appendString(m, "RequesterExe", who.exe);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "RequesterUid", "x", who.uid);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "RequesterGid", "x", who.gid);
    if (r >= 0)
        r = appendString(m, "RequesterUnit", who.unit);
    if (r >= 0)
        r = appendString(m, "RequesterCgroup", who.cgroup);
    if (r >= 0)
        r = appendString(m, "RequesterUserNamespace", namespaceName(who.userns));
    if (r >= 0)
        r = appendString(m, "RequesterPidNamespace", namespaceName(who.pidns));
    if (r >= 0)
        r = appendString(m, "RequesterNetNamespace", namespaceName(who.netns));
    if (r >= 0)
        r = appendString(m, "RequesterCallSite", who.callSite);
    if (r >= 0)
        r = appendString(m, "RequesterFromInitOf", who.fromInitOf);
    return r;
}

}  // namespace

int appendModuleRecord(sd_bus_message *m, const ModuleView &module, const ModuleBindings *bindings,
                       const AutocleanStatus &fate) {
    const ModuleRecord *record = module.record ? &*module.record : nullptr;
    const char *state = module.builtin ? "builtin" : loadStateName(module.kernel.state);
    int r = sd_bus_message_open_container(m, 'a', "{sv}");
    if (r >= 0)
        r = appendString(m, "Name", module.kernel.name);
    if (r >= 0)
        r = appendString(m, "Origin", record ? originName(record->origin) : "external");
    if (r >= 0)
        r = appendString(m, "Trigger", record ? record->trigger : "");
    if (r >= 0)
        r = appendString(m, "Device", record ? record->device : "");
    if (r >= 0)
        r = appendString(m, "Subsystem", record ? record->subsystem : "");
    if (r >= 0)
        r = appendString(m, "NeededAs", record ? needName(record->need) : "");
    if (r >= 0)
        r = appendString(m, "NeededBy", record ? record->neededBy : "");
    if (r >= 0)
        r = appendRequester(m, record ? record->requester : Requester{});
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "LoadedAt", "t",
                                  record ? record->loadedAtUsec : std::uint64_t{0});
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "RefCount", "i", module.kernel.refcnt);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "Size", "t", module.kernel.size);
    if (r >= 0)
        r = appendString(m, "State", state);
    if (r >= 0)
        r = appendStringList(m, "Holders", module.kernel.holders);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "Autoclean", "b", record && record->autoclean);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "Pinned", "b", record && record->pinned);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "IdleSince", "t", fate.idleSinceUsec);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "UnloadAt", "t", fate.unloadAtUsec);
    if (r >= 0)
        r = appendString(m, "KeptBecause",
                         module.builtin ? "built into the kernel" : fate.keptBecause.text());
    if (bindings != nullptr) {
        if (r >= 0)
            r = appendStringList(m, "Drivers", bindings->drivers);
        if (r >= 0)
            r = appendStringList(m, "Devices", bindings->devices);
    }
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    return r;
}

int appendRequestRecord(sd_bus_message *m, const RequestRecord &record) {
    int r = sd_bus_message_open_container(m, 'a', "{sv}");
    if (r >= 0)
        r = appendString(m, "Request", record.request);
    if (r >= 0)
        r = appendString(m, "Origin", originName(record.origin));
    if (r >= 0)
        r = appendString(m, "Device", record.device);
    if (r >= 0)
        r = appendString(m, "Subsystem", record.subsystem);
    if (r >= 0)
        r = appendRequester(m, record.requester);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "Time", "t", record.timeUsec);
    if (r >= 0)
        r = sd_bus_message_append(m, "{sv}", "DurationUsec", "t", record.durationUsec);
    if (r >= 0)
        r = appendString(m, "Result", record.result());
    if (r >= 0)
        r = appendString(m, "Message", record.message);
    if (r >= 0)
        r = appendStringList(m, "Modules", record.inserted);
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    return r;
}

int replyWith(sd_bus_message *call, const std::function<int(sd_bus_message *reply)> &fill) {
    sd_bus_message *raw = nullptr;
    int r = sd_bus_message_new_method_return(call, &raw);
    if (r < 0)
        return r;
    BusMessagePtr reply(raw);
    r = fill(reply.get());
    if (r < 0)
        return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
}

}  // namespace lkmd
