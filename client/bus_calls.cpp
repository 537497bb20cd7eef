// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bus_calls.h"

#include <cstring>

#include "bus_names.h"
#include "bus_reader.h"

namespace lkmd::client {
namespace {

constexpr std::uint64_t kDefaultTimeoutUsec = 0;  // sd-bus's default

BusFailure failureFrom(const sd_bus_error *error, int r) {
    BusFailure failure;
    failure.name = error->name ? error->name : "";
    failure.message = error->message ? error->message : "";
    failure.error = sd_bus_error_is_set(error) ? sd_bus_error_get_errno(error) : -r;
    return failure;
}

// The call succeeded but its reply does not have the documented signature.
BusFailure malformedReply(int r) {
    return BusFailure{{}, "malformed reply from lkmd: " + std::string(std::strerror(-r)), -r};
}

// A call whose reply one reader turns into the result.
template <typename Read>
int callAndRead(sd_bus *bus, const char *method, const char *argument, Read read,
                BusFailure &failure) {
    MessagePtr reply;
    int r = callManager(bus, method, argument, kDefaultTimeoutUsec, reply, failure);
    if (r < 0)
        return r;
    r = read(reply.get());
    if (r < 0)
        failure = malformedReply(r);
    return r;
}

}  // namespace

int openConnection(const CliArgs &args, Connection *connection) {
    sd_bus *raw = nullptr;
    int r;
    if (!args.host.empty()) {
        r = sd_bus_open_system_remote(&raw, args.host.c_str());
        connection->place = "on " + args.host;
    } else if (!args.machine.empty()) {
        r = sd_bus_open_system_machine(&raw, args.machine.c_str());
        connection->place = "in container " + args.machine;
    } else {
        r = sd_bus_open_system(&raw);  // honours DBUS_SYSTEM_BUS_ADDRESS
    }
    connection->bus.reset(raw);
    return r;
}

int callManager(sd_bus *bus, const char *method, const AppendArguments &appendArguments,
                std::uint64_t timeoutUsec, MessagePtr &reply, BusFailure &failure) {
    sd_bus_message *raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, bus::kServiceName, bus::kManagerPath,
                                           bus::kManagerInterface, method);
    MessagePtr call(raw);
    if (r >= 0 && appendArguments)
        r = appendArguments(call.get());
    if (r < 0) {
        failure = BusFailure{{}, {}, -r};
        return r;
    }

    BusError error;
    raw = nullptr;
    r = sd_bus_call(bus, call.get(), timeoutUsec, error.get(), &raw);
    reply.reset(raw);
    if (r < 0) {
        failure = failureFrom(error.get(), r);
        return r;
    }
    return 0;
}

int callManager(sd_bus *bus, const char *method, const char *argument, std::uint64_t timeoutUsec,
                MessagePtr &reply, BusFailure &failure) {
    const AppendArguments append = [argument](sd_bus_message *call) {
        return sd_bus_message_append(call, "s", argument);
    };
    return callManager(bus, method, argument ? append : AppendArguments{}, timeoutUsec, reply,
                       failure);
}

int lkmdIsRunning(sd_bus *bus, BusFailure &failure) {
    BusError error;
    sd_bus_message *raw = nullptr;
    int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "NameHasOwner", error.get(), &raw, "s",
                               bus::kServiceName);
    MessagePtr reply(raw);
    if (r < 0) {
        failure = failureFrom(error.get(), r);
        return r;
    }
    int owned = 0;
    r = sd_bus_message_read(reply.get(), "b", &owned);
    if (r < 0) {
        failure = malformedReply(r);
        return r;
    }
    return owned ? 1 : 0;
}

int getManagerProperties(sd_bus *bus, PropertyMap &properties, BusFailure &failure) {
    BusError error;
    sd_bus_message *raw = nullptr;
    int r = sd_bus_call_method(bus, bus::kServiceName, bus::kManagerPath,
                               "org.freedesktop.DBus.Properties", "GetAll", error.get(), &raw, "s",
                               bus::kManagerInterface);
    MessagePtr reply(raw);
    if (r < 0) {
        failure = failureFrom(error.get(), r);
        return r;
    }
    r = readPropertyMap(reply.get(), properties);
    if (r < 0)
        failure = malformedReply(r);
    return r;
}

int listModules(sd_bus *bus, std::vector<ModuleInfo> &modules, BusFailure &failure) {
    return callAndRead(
        bus, "ListModules", nullptr,
        [&](sd_bus_message *reply) { return readModuleList(reply, modules); }, failure);
}

int listRequests(sd_bus *bus, std::vector<RequestInfo> &requests, BusFailure &failure) {
    return callAndRead(
        bus, "ListRequests", nullptr,
        [&](sd_bus_message *reply) { return readRequestList(reply, requests); }, failure);
}

int getModule(sd_bus *bus, const std::string &name, ModuleInfo &module, BusFailure &failure) {
    return callAndRead(
        bus, "GetModule", name.c_str(),
        [&](sd_bus_message *reply) {
            PropertyMap properties;
            const int r = readPropertyMap(reply, properties);
            if (r >= 0)
                module = moduleInfoFromProperties(properties);
            return r;
        },
        failure);
}

int explainName(sd_bus *bus, const std::string &name, ExplainInfo &info, BusFailure &failure) {
    return callAndRead(
        bus, "Explain", name.c_str(),
        [&](sd_bus_message *reply) {
            PropertyMap properties;
            RecordLists lists;
            const int r = readPropertyMap(reply, properties, &lists);
            if (r >= 0)
                info = explainInfoFromProperties(properties, lists);
            return r;
        },
        failure);
}

int suggestAllowList(sd_bus *bus, std::vector<SuggestionInfo> &suggestions, BusFailure &failure) {
    return callAndRead(
        bus, "SuggestAllowList", nullptr,
        [&](sd_bus_message *reply) {
            std::vector<PropertyMap> records;
            const int r = readPropertyMapList(reply, records);
            for (const PropertyMap &record : records)
                suggestions.push_back(suggestionFromProperties(record));
            return r;
        },
        failure);
}

}  // namespace lkmd::client
