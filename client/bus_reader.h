// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <map>
#include <string>
#include <vector>

#include <systemd/sd-bus.h>

#include "module_info.h"
#include "request_info.h"

namespace lkmd::client {

// Reads one a{sv} into properties. Values of types PropertyValue cannot hold are skipped, so a
// newer daemon may add fields of any type. Returns 1 when a dictionary was read, 0 at the end of
// an enclosing array (as sd_bus_message_enter_container() does), or a negative errno.
int readPropertyMap(sd_bus_message *message, PropertyMap &properties);
// The same, with the values of type aa{sv} (Explain's Steps, Rules, Judgements) read into lists
// by key instead of skipped.
using RecordLists = std::map<std::string, std::vector<PropertyMap>, std::less<>>;
int readPropertyMap(sd_bus_message *message, PropertyMap &properties, RecordLists *lists);
// Reads aa{sv} as it is.
int readPropertyMapList(sd_bus_message *message, std::vector<PropertyMap> &records);

// Read aa{sv} into module records (ListModules) and request records (ListRequests), in order.
int readModuleList(sd_bus_message *message, std::vector<ModuleInfo> &modules);
int readRequestList(sd_bus_message *message, std::vector<RequestInfo> &requests);

// Reads as.
int readStringArray(sd_bus_message *message, std::vector<std::string> &strings);

}  // namespace lkmd::client
