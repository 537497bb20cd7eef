// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
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

// An aa{sv}: one record per item, appended by append(m, item) (0 or a negative errno).
template <typename Items, typename Append>
int appendRecordArray(sd_bus_message *m, const Items &items, Append append) {
    int r = sd_bus_message_open_container(m, 'a', "a{sv}");
    for (const auto &item : items)
        if (r >= 0)
            r = append(m, item);
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    return r;
}

// Answers call with a reply that fill (0 or a negative errno) writes.
int replyWith(sd_bus_message *call, const std::function<int(sd_bus_message *reply)> &fill);

// The a{sv} records documented in org.lkmd1.Manager.xml. Each returns 0 or a negative errno.
int appendModuleRecord(sd_bus_message *m, const ModuleView &module, const ModuleBindings *bindings,
                       const AutocleanStatus &fate);
int appendRequestRecord(sd_bus_message *m, const RequestRecord &record);

}  // namespace lkmd
