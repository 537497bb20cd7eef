// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <type_traits>

#include <systemd/sd-bus.h>

#include "authorization.h"
#include "autoclean.h"
#include "load_coordinator.h"
#include "load_history.h"
#include "loader.h"
#include "metrics.h"
#include "module_events.h"
#include "module_queries.h"
#include "module_registry.h"
#include "request_log.h"
#include "sd_ptr.h"
#include "service_status.h"
#include "unloader.h"

namespace lkmd {

// What the bus service acts through.
struct BusServices {
    Loader &loader;
    Unloader &unloader;
    const ModuleQueries &queries;
    ModuleRegistry &registry;
    Autoclean &autoclean;
    RequestLog &requests;
    ModuleEventHub &events;
    std::filesystem::path procfs;  // to learn more of a caller than the bus tells
    const Metrics &metrics;
    const KernelState &kernel;
    const ServiceStatus &status;
    ModuleBackend &backend;  // the loop's, for Explain
    const LoadCoordinator &coordinator;
    const LoadHistory &history;
};

// org.lkmd1.Manager on the bus: validate, authorize (CAP_SYS_MODULE or polkit), act, reply; lkmd's
// loads, unloads and answered requests as signals; its status as properties (bus_status.cpp).
class BusService final : public ModuleEvents {
public:
    BusService(sd_bus *bus, BusServices services);
    ~BusService() override;

    // Registers the object; the caller requests the name afterwards, once everything is served.
    int start();

    // Re-reads the configuration and calls done once it is in force everywhere (kmod's files
    // too): 0, or -EBADMSG with the lines that were left out, or another negative errno.
    using ReloadDone = std::function<void(int result, const std::string &problems)>;
    using ReloadHandler = std::function<void(ReloadDone done)>;
    void setReloadHandler(ReloadHandler handler) { reload_ = std::move(handler); }

    // The Metrics property changed (emits PropertiesChanged).
    void metricsChanged();

    void moduleLoaded(const std::string &module, Origin origin) override;
    void moduleUnloaded(const std::string &module, const std::string &reason) override;
    // Emits RequestAnswered; the root calls it from the request log's listener.
    void requestAnswered(const RequestRecord &record);
    const ServiceStatus &status() const { return services_.status; }
    // After a reload, successful or not: the status properties that may have changed.
    void statusChanged();

private:
    // Answers the call itself (returns >= 0), or returns an error or fills *error to have it
    // answered, like a vtable handler.
    using Action = std::function<int(sd_bus_message *call, sd_bus_error *error)>;
    void whenAuthorized(sd_bus_message *message, const std::string &module, Action action);
    void startLoad(sd_bus_message *message, const std::string &name, LoadOptions options);
    AutocleanStatus fateOf(const ModuleView &module) const;
    static int onLoadModule(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onLoadModuleEx(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onReload(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onSetModulePinned(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onUnloadModule(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onListModules(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onListRequests(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onGetModule(sd_bus_message *message, void *userdata, sd_bus_error *error);
    // In bus_explain.cpp.
    static int onExplain(sd_bus_message *message, void *userdata, sd_bus_error *error);
    static int onSuggestAllowList(sd_bus_message *message, void *userdata, sd_bus_error *error);
    // The module a name stands for (resolve() of ModuleQueries), or an error set in *error.
    int resolveModule(const std::string &name, std::string *module, sd_bus_error *error) const;

    // Property getters, in bus_status.cpp.
    using PropertyGetter = std::remove_pointer_t<sd_bus_property_get_t>;
    static PropertyGetter getVersion, getStartedAt, getHotplugMode, getIdleTimeout, getConfigFiles,
        getConfigErrors, getRequestCounts, getKernelModprobe, getKernelModprobeIsLkmd,
        getModprobeHelper, getStaticUsermodeHelper, getMetrics;
    static const sd_bus_vtable kVtable[];

    sd_bus *bus_;
    BusServices services_;
    ReloadHandler reload_;
    Authorization authorization_;
    BusSlotPtr slot_;
};

}  // namespace lkmd
