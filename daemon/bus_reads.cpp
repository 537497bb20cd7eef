// SPDX-License-Identifier: LGPL-2.1-or-later
// The members of org.lkmd1.Manager that only read, open to every caller: the listings, one
// module's record, and the status properties that `lkmctl status` shows.
#include <cerrno>
#include <cstring>

#include "build_config.h"
#include "bus_arguments.h"
#include "bus_errors.h"
#include "bus_names.h"
#include "bus_records.h"
#include "bus_service.h"
#include "log.h"

namespace lkmd {
namespace {

int appendStrings(sd_bus_message *reply, const std::vector<std::string> &values) {
    int r = sd_bus_message_open_container(reply, 'a', "s");
    for (const std::string &value : values)
        if (r >= 0)
            r = sd_bus_message_append_basic(reply, 's', value.c_str());
    if (r >= 0)
        r = sd_bus_message_close_container(reply);
    return r;
}

const ServiceStatus &statusOf(void *userdata) {
    return static_cast<const BusService *>(userdata)->status();
}

}  // namespace

void BusService::statusChanged() {
    const int r = sd_bus_emit_properties_changed(bus_, bus::kManagerPath, bus::kManagerInterface,
                                                 "HotplugMode", "IdleTimeoutUsec", "ConfigFiles",
                                                 "ConfigErrors", nullptr);
    if (r < 0)
        logger("bus")->warn("Could not emit PropertiesChanged: {}, ignoring", std::strerror(-r));
}

int BusService::getVersion(sd_bus *, const char *, const char *, const char *,
                           sd_bus_message *reply, void *, sd_bus_error *) {
    return sd_bus_message_append(reply, "s", LKMD_VERSION);
}

int BusService::getStartedAt(sd_bus *, const char *, const char *, const char *,
                             sd_bus_message *reply, void *userdata, sd_bus_error *) {
    return sd_bus_message_append(reply, "t", statusOf(userdata).startedAtUsec);
}

int BusService::getHotplugMode(sd_bus *, const char *, const char *, const char *,
                               sd_bus_message *reply, void *userdata, sd_bus_error *) {
    return sd_bus_message_append(reply, "s", statusOf(userdata).hotplugMode.c_str());
}

int BusService::getIdleTimeout(sd_bus *, const char *, const char *, const char *,
                               sd_bus_message *reply, void *userdata, sd_bus_error *) {
    return sd_bus_message_append(reply, "t", statusOf(userdata).idleTimeoutUsec);
}

int BusService::getConfigFiles(sd_bus *, const char *, const char *, const char *,
                               sd_bus_message *reply, void *userdata, sd_bus_error *) {
    return appendStrings(reply, statusOf(userdata).configFiles);
}

int BusService::getConfigErrors(sd_bus *, const char *, const char *, const char *,
                                sd_bus_message *reply, void *userdata, sd_bus_error *) {
    return appendStrings(reply, statusOf(userdata).configErrors);
}

int BusService::getRequestCounts(sd_bus *, const char *, const char *, const char *,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *) {
    const auto *self = static_cast<const BusService *>(userdata);
    int r = sd_bus_message_open_container(reply, 'a', "{st}");
    for (const auto &[result, count] : self->services_.requests.counts())
        if (r >= 0)
            r = sd_bus_message_append(reply, "{st}", result.c_str(), count);
    if (r >= 0)
        r = sd_bus_message_close_container(reply);
    return r;
}

// Read at each Get: an administrator may change it at any time (sysctl).
int BusService::getKernelModprobe(sd_bus *, const char *, const char *, const char *,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *) {
    const auto *self = static_cast<const BusService *>(userdata);
    return sd_bus_message_append(reply, "s", self->services_.kernel.readModprobePath().c_str());
}

// The same file, not the same string: /sbin/lkmd-modprobe on a merged-/usr system is lkmd's.
int BusService::getKernelModprobeIsLkmd(sd_bus *, const char *, const char *, const char *,
                                        sd_bus_message *reply, void *userdata, sd_bus_error *) {
    const auto *self = static_cast<const BusService *>(userdata);
    return sd_bus_message_append(
        reply, "b", sameFile(self->services_.kernel.readModprobePath(), LKMD_HELPER_PATH));
}

int BusService::getModprobeHelper(sd_bus *, const char *, const char *, const char *,
                                  sd_bus_message *reply, void *, sd_bus_error *) {
    return sd_bus_message_append(reply, "s", LKMD_HELPER_PATH);
}

int BusService::getStaticUsermodeHelper(sd_bus *, const char *, const char *, const char *,
                                        sd_bus_message *reply, void *userdata, sd_bus_error *) {
    return appendStrings(reply, statusOf(userdata).staticUsermodeHelper);
}

int BusService::onListModules(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    std::vector<ModuleView> modules;
    int r = self->services_.queries.list(&modules);
    if (r < 0)
        return sd_bus_error_set_errnof(error, r, "Could not read the loaded modules: %s",
                                       std::strerror(-r));
    return replyWith(message, [&](sd_bus_message *reply) {
        return appendRecordArray(
            reply, modules, [self](sd_bus_message *m, const ModuleView &module) {
                return appendModuleRecord(m, module, nullptr, self->fateOf(module));
            });
    });
}

int BusService::onGetModule(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    std::string name;
    int r = readName(message, NameKind::Module, &name, error);
    if (r >= 0)
        r = self->resolveModule(name, &name, error);
    if (r < 0)
        return r;
    ModuleView module;
    ModuleBindings bindings;
    r = self->services_.queries.get(name, &module, &bindings);
    if (r == -ENOENT)
        return sd_bus_error_set(error, bus::kErrorNoSuchModule, "no such module");
    if (r == -ESRCH)
        return sd_bus_error_set(error, bus::kErrorNotLoaded, "module is not loaded");
    if (r < 0)
        return sd_bus_error_set_errnof(error, r, "Could not read module state: %s",
                                       std::strerror(-r));
    return replyWith(message, [&](sd_bus_message *reply) {
        return appendModuleRecord(reply, module, &bindings, self->fateOf(module));
    });
}

int BusService::onListRequests(sd_bus_message *message, void *userdata, sd_bus_error *) {
    auto *self = static_cast<BusService *>(userdata);
    return replyWith(message, [self](sd_bus_message *reply) {
        return appendRecordArray(reply, self->services_.requests.records(), appendRequestRecord);
    });
}

int BusService::getMetrics(sd_bus *, const char *, const char *, const char *,
                           sd_bus_message *reply, void *userdata, sd_bus_error *) {
    auto *self = static_cast<BusService *>(userdata);
    int r = sd_bus_message_open_container(reply, 'a', "{sd}");
    for (const auto &[series, value] : self->services_.metrics.series())
        if (r >= 0)
            r = sd_bus_message_append(reply, "{sd}", series.c_str(), value);
    if (r >= 0)
        r = sd_bus_message_close_container(reply);
    return r;
}

}  // namespace lkmd
