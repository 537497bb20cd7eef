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

// The a{sv} records documented in org.lkmd1.Manager.xml. Each returns 0 or a negative errno.
int appendModuleRecord(sd_bus_message *m, const ModuleView &module, const ModuleBindings *bindings,
                       const AutocleanStatus &fate);
int appendRequestRecord(sd_bus_message *m, const RequestRecord &record);

}  // namespace lkmd
