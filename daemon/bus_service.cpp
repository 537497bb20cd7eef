// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bus_service.h"

#include <cerrno>
#include <cstring>

#include "build_config.h"
#include "bus_arguments.h"
#include "bus_errors.h"
#include "bus_names.h"
#include "bus_records.h"
#include "joined.h"
#include "log.h"

namespace lkmd {
namespace {

enum class Verb { Load, Unload };

int replyWithOutcomeError(sd_bus_message *message, Verb verb, const Outcome &outcome) {
    const bus::ErrorInfo *info = bus::errorForErrno(outcome.error);
    const char *name = info != nullptr ? info->name : nullptr;
    // The generic failures belong to the verb, whatever errno the kernel chose.
    if (name == nullptr || name == std::string_view(bus::kErrorLoadFailed) ||
        name == std::string_view(bus::kErrorUnloadFailed))
        name = verb == Verb::Load ? bus::kErrorLoadFailed : bus::kErrorUnloadFailed;
    return sd_bus_reply_method_errorf(message, name, "%s", outcome.message.c_str());
}

// A call answered later, when the load or unload it asked for is done.
class DeferredReply {
public:
    explicit DeferredReply(sd_bus_message *call)
        : call_(sd_bus_message_ref(call), sd_bus_message_unref) {}

    // An outcome with an error is answered with the verb's error; else build fills the reply.
    void answer(Verb verb, const Outcome &outcome,
                const std::function<int(sd_bus_message *reply)> &build = {}) const {
        int r = 0;
        if (outcome.error < 0) {
            r = replyWithOutcomeError(call_.get(), verb, outcome);
        } else {
            sd_bus_message *raw = nullptr;
            r = sd_bus_message_new_method_return(call_.get(), &raw);
            BusMessagePtr reply(raw);
            if (r >= 0 && build)
                r = build(reply.get());
            if (r >= 0)
                r = sd_bus_send(nullptr, reply.get(), nullptr);
        }
        if (r < 0)
            logger("bus")->warn("Could not answer {}: {}, ignoring",
                                sd_bus_message_get_member(call_.get()), std::strerror(-r));
    }

private:
    std::shared_ptr<sd_bus_message> call_;  // shared: std::function needs a copyable capture
};

}  // namespace

const sd_bus_vtable BusService::kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", BusService::getVersion, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Metrics", "a{sd}", BusService::getMetrics, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("StartedAt", "t", BusService::getStartedAt, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("HotplugMode", "s", BusService::getHotplugMode, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("IdleTimeoutUsec", "t", BusService::getIdleTimeout, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ConfigFiles", "as", BusService::getConfigFiles, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ConfigErrors", "as", BusService::getConfigErrors, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("RequestCounts", "a{st}", BusService::getRequestCounts, 0, 0),
    SD_BUS_PROPERTY("KernelModprobe", "s", BusService::getKernelModprobe, 0, 0),
    SD_BUS_PROPERTY("KernelModprobeIsLkmd", "b", BusService::getKernelModprobeIsLkmd, 0, 0),
    SD_BUS_PROPERTY("ModprobeHelper", "s", BusService::getModprobeHelper, 0,
                    SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("StaticUsermodeHelper", "as", BusService::getStaticUsermodeHelper, 0,
                    SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_METHOD_WITH_ARGS("LoadModule", SD_BUS_ARGS("s", name), SD_BUS_RESULT("as", inserted),
                            BusService::onLoadModule, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("LoadModuleEx", SD_BUS_ARGS("s", name, "a{sv}", options),
                            SD_BUS_RESULT("as", inserted), BusService::onLoadModuleEx,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("SetModulePinned", SD_BUS_ARGS("s", name, "b", pinned),
                            SD_BUS_NO_RESULT, BusService::onSetModulePinned,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("UnloadModule", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                            BusService::onUnloadModule, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, BusService::onReload,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ListModules", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", modules),
                            BusService::onListModules, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GetModule", SD_BUS_ARGS("s", name), SD_BUS_RESULT("a{sv}", module),
                            BusService::onGetModule, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ListRequests", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", requests),
                            BusService::onListRequests, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("Explain", SD_BUS_ARGS("s", name), SD_BUS_RESULT("a{sv}", explanation),
                            BusService::onExplain, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("SuggestAllowList", SD_BUS_NO_ARGS,
                            SD_BUS_RESULT("aa{sv}", suggestions), BusService::onSuggestAllowList,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_ARGS("ModuleLoaded", SD_BUS_ARGS("s", name, "s", origin), 0),
    SD_BUS_SIGNAL_WITH_ARGS("ModuleUnloaded", SD_BUS_ARGS("s", name, "s", reason), 0),
    SD_BUS_SIGNAL_WITH_ARGS("RequestAnswered", SD_BUS_ARGS("a{sv}", request), 0),
    SD_BUS_VTABLE_END,
};

BusService::BusService(sd_bus *bus, BusServices services)
    : bus_(bus), services_(services), authorization_(bus) {
    services_.events.add(this);
}

BusService::~BusService() {
    services_.events.remove(this);
}

int BusService::start() {
    int r = sd_bus_error_add_map(bus::kErrorMap);
    if (r < 0)
        return r;
    sd_bus_slot *slot = nullptr;
    r = sd_bus_add_object_vtable(bus_, &slot, bus::kManagerPath, bus::kManagerInterface, kVtable,
                                 this);
    if (r < 0)
        return r;
    slot_.reset(slot);
    return 0;
}

void BusService::moduleLoaded(const std::string &module, Origin origin) {
    const int r = sd_bus_emit_signal(bus_, bus::kManagerPath, bus::kManagerInterface,
                                     "ModuleLoaded", "ss", module.c_str(), originName(origin));
    if (r < 0)
        logger("bus")->warn("Could not emit ModuleLoaded for '{}': {}, ignoring", module,
                            std::strerror(-r));
}

void BusService::metricsChanged() {
    const int r = sd_bus_emit_properties_changed(bus_, bus::kManagerPath, bus::kManagerInterface,
                                                 "Metrics", nullptr);
    if (r < 0)
        logger("bus")->debug("Could not emit PropertiesChanged for Metrics: {}, ignoring",
                             std::strerror(-r));
}

void BusService::moduleUnloaded(const std::string &module, const std::string &reason) {
    const int r = sd_bus_emit_signal(bus_, bus::kManagerPath, bus::kManagerInterface,
                                     "ModuleUnloaded", "ss", module.c_str(), reason.c_str());
    if (r < 0)
        logger("bus")->warn("Could not emit ModuleUnloaded for '{}': {}, ignoring", module,
                            std::strerror(-r));
}

namespace {

// Who called: uid and pid as the bus daemon vouches for them, the rest from /proc.
Requester callerOf(sd_bus_message *message, const std::filesystem::path &procfs) {
    sd_bus_creds *raw = nullptr;
    int r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID, &raw);
    std::unique_ptr<sd_bus_creds, decltype(&sd_bus_creds_unref)> creds(raw, sd_bus_creds_unref);
    pid_t pid = 0;
    uid_t uid = 0;
    if (r >= 0)
        r = sd_bus_creds_get_pid(creds.get(), &pid);
    if (r >= 0)
        r = sd_bus_creds_get_euid(creds.get(), &uid);
    if (r < 0)
        return unknownRequester(std::string("the bus gave no credentials: ") + std::strerror(-r));
    Requester caller = readRequester(procfs, pid, std::nullopt);
    if (!caller.known)
        return caller;
    caller.uid = uid;
    caller.callSite = std::string("D-Bus ") + sd_bus_message_get_member(message);
    return caller;
}

}  // namespace

// The same record as ListRequests', so that a monitor and a later listing agree.
void BusService::requestAnswered(const RequestRecord &record) {
    sd_bus_message *raw = nullptr;
    int r = sd_bus_message_new_signal(bus_, &raw, bus::kManagerPath, bus::kManagerInterface,
                                      "RequestAnswered");
    BusMessagePtr signal(raw);
    if (r >= 0)
        r = appendRequestRecord(signal.get(), record);
    if (r >= 0)
        r = sd_bus_send(bus_, signal.get(), nullptr);
    if (r < 0)
        logger("bus")->warn("Could not emit RequestAnswered for '{}': {}, ignoring",
                            printable(record.request), std::strerror(-r));
}

// Loads can block for seconds in a module's init: keep the message and answer on completion.
void BusService::startLoad(sd_bus_message *message, const std::string &name, LoadOptions options) {
    options.requester = callerOf(message, services_.procfs);
    services_.loader.load(
        name, Origin::Bus,
        [reply = DeferredReply(message)](Outcome outcome) {
            reply.answer(Verb::Load, outcome, [&outcome](sd_bus_message *m) {
                std::vector<const char *> names;
                for (const std::string &module : outcome.inserted)
                    names.push_back(module.c_str());
                names.push_back(nullptr);
                return sd_bus_message_append_strv(m, const_cast<char **>(names.data()));
            });
        },
        std::move(options));
}

AutocleanStatus BusService::fateOf(const ModuleView &module) const {
    if (!module.record)
        return {0, 0, {Keep::External, {}}};
    return services_.autoclean.status(module.kernel.name);
}

// Mutating members are UNPRIVILEGED in the vtable: Authorization decides (CAP_SYS_MODULE or
// polkit), possibly later. The action then answers the call itself, or returns an error for
// runAuthorized to answer, as a vtable handler would.
void BusService::whenAuthorized(sd_bus_message *message, const std::string &module, Action action) {
    std::map<std::string, std::string> details;
    if (!module.empty())
        details["module"] = module;
    BusMessagePtr call(sd_bus_message_ref(message));
    authorization_.check(
        message, std::move(details),
        [this, call = std::shared_ptr<sd_bus_message>(call.release(), sd_bus_message_unref),
         action = std::move(action)](const sd_bus_error *refusal) {
            int r = 0;
            if (refusal != nullptr) {
                r = sd_bus_reply_method_error(call.get(), refusal);
            } else {
                BusError error;
                r = action(call.get(), error.get());
                if (error.isSet())
                    r = sd_bus_reply_method_error(call.get(), error.get());
                else if (r < 0)
                    r = sd_bus_reply_method_errno(call.get(), r, nullptr);
            }
            if (r < 0)
                logger("bus")->warn("Could not answer {}: {}, ignoring",
                                    sd_bus_message_get_member(call.get()), std::strerror(-r));
        });
}

int BusService::resolveModule(const std::string &name, std::string *module,
                              sd_bus_error *error) const {
    std::vector<std::string> candidates;
    const int r = services_.queries.resolve(name, module, &candidates);
    if (r == -ENOENT)
        return sd_bus_error_set(error, bus::kErrorNoSuchModule, "no such module");
    if (r == -ENOTUNIQ)
        return sd_bus_error_setf(error, bus::kErrorAmbiguousName,
                                 "'%s' stands for several modules: %s", printable(name).c_str(),
                                 joined(candidates).c_str());
    if (r < 0)
        return sd_bus_error_set_errnof(error, r, "Could not look up the module: %s",
                                       std::strerror(-r));
    return 0;
}

int BusService::onLoadModule(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    std::string request;
    int r = readName(message, NameKind::Request, &request, error);
    if (r < 0)
        return r;
    self->whenAuthorized(message, request, [self, request](sd_bus_message *m, sd_bus_error *) {
        self->startLoad(m, request, {});
        return 0;
    });
    return 1;
}

// Options are a{sv} so that more can come; an unknown one is an error, not silently ignored. Each
// known option may come once, so the caller's dictionary costs the loop a few entries at most,
// however long it is: the first repeated or unknown key ends the reading.
int BusService::onLoadModuleEx(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    std::string request;
    int r = readName(message, NameKind::Request, &request, error);
    if (r < 0)
        return r;
    LoadOptions options;
    r = readLoadOptions(message, &options, error);
    if (r < 0)
        return r;
    self->whenAuthorized(message, request,
                         [self, request, options](sd_bus_message *m, sd_bus_error *) {
                             self->startLoad(m, request, options);
                             return 0;
                         });
    return 1;
}

int BusService::onReload(sd_bus_message *message, void *userdata, sd_bus_error *) {
    auto *self = static_cast<BusService *>(userdata);
    self->whenAuthorized(message, {}, [self](sd_bus_message *m, sd_bus_error *) {
        if (!self->reload_)
            return -EOPNOTSUPP;
        // Answered when the new policy is in force for kmod too (FallbackWriter).
        std::shared_ptr<sd_bus_message> call(sd_bus_message_ref(m), sd_bus_message_unref);
        self->reload_([call](int r, const std::string &problems) {
            if (r == -EBADMSG)
                r = sd_bus_reply_method_errorf(call.get(), bus::kErrorInvalidConfig,
                                               "applied the configuration without these lines: %s",
                                               problems.c_str());
            else if (r < 0)
                r = sd_bus_reply_method_errno(call.get(), r, nullptr);
            else
                r = sd_bus_reply_method_return(call.get(), nullptr);
            if (r < 0)
                logger("bus")->warn("Could not answer Reload: {}, ignoring", std::strerror(-r));
        });
        return 0;
    });
    return 1;
}

// Acts on the one module the name stands for; the polkit rule sees that module's name.
int BusService::onSetModulePinned(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    std::string name;
    std::string module;
    int pinned = 0;
    int r = readName(message, NameKind::Module, &name, error);
    if (r >= 0)
        r = sd_bus_message_read(message, "b", &pinned);
    if (r >= 0)
        r = self->resolveModule(name, &module, error);
    if (r < 0)
        return r;
    self->whenAuthorized(
        message, module, [self, module, pinned](sd_bus_message *m, sd_bus_error *failure) {
            ModuleView view;
            ModuleBindings bindings;
            const int found = self->services_.queries.get(module, &view, &bindings);
            if (found == -ESRCH || found == -ENOENT)
                return sd_bus_error_set(failure, bus::kErrorNotLoaded, "module is not loaded");
            if (found < 0)
                return found;
            if (view.builtin)
                return sd_bus_error_set(failure, bus::kErrorBuiltin,
                                        "module is built into the kernel");
            const int set =
                view.record ? self->services_.registry.setPinned(module, pinned != 0) : -EREMOTE;
            if (set == -EREMOTE || set == -ESRCH)
                return sd_bus_error_set(failure, bus::kErrorExternal,
                                        "lkmd did not load this module; it never unloads it");
            if (set < 0)
                return set;
            self->services_.autoclean.refresh();
            return sd_bus_reply_method_return(m, nullptr);
        });
    return 1;
}

int BusService::onUnloadModule(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    auto *self = static_cast<BusService *>(userdata);
    std::string name;
    std::string module;
    int r = readName(message, NameKind::Module, &name, error);
    if (r >= 0)
        r = self->resolveModule(name, &module, error);
    if (r < 0)
        return r;
    self->whenAuthorized(message, module, [self, module](sd_bus_message *m, sd_bus_error *) {
        self->services_.unloader.unload(
            module,
            [reply = DeferredReply(m)](Outcome outcome) { reply.answer(Verb::Unload, outcome); },
            callerOf(m, self->services_.procfs));
        return 0;
    });
    return 1;
}

}  // namespace lkmd
