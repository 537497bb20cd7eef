// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>
#include <vector>

#include <systemd/sd-bus.h>

#include "autoclean.h"
#include "kernel_state.h"
#include "module_queries.h"
#include "request_log.h"

namespace lkmd {

// One {sv} entry of an a{sv} record.
int appendString(sd_bus_message *m, const char *key, const std::string &value);
int appendStringList(sd_bus_message *m, const char *key, const std::vector<std::string> &values);

// The a{sv} records documented in org.lkmd1.Manager.xml. Each returns 0 or a negative errno.
int appendModuleRecord(sd_bus_message *m, const ModuleView &module, const ModuleBindings *bindings,
                       const AutocleanStatus &fate);
int appendRequestRecord(sd_bus_message *m, const RequestRecord &record);

}  // namespace lkmd
