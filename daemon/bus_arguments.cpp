// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bus_arguments.h"

#include <string_view>

#include "bus_errors.h"
#include "request_name.h"

namespace lkmd {

int readName(sd_bus_message *message, NameKind kind, std::string *name, sd_bus_error *error) {
    const char *text = nullptr;
    const int r = sd_bus_message_read(message, "s", &text);
    if (r < 0)
        return r;
    const char *why =
        kind == NameKind::Module ? whyInvalidModuleReference(text) : whyInvalidRequestName(text);
    if (why != nullptr)
        return sd_bus_error_setf(error, bus::kErrorInvalidName, "invalid module name: %s", why);
    *name = text;
    return 0;
}

// The first repeated or unknown key ends the reading: a caller's dictionary, however long, costs
// the loop a few entries before authorization.
int readLoadOptions(sd_bus_message *message, LoadOptions *options, sd_bus_error *error) {
    bool autoclean = false;
    int r = sd_bus_message_enter_container(message, 'a', "{sv}");
    while (r >= 0 && (r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
        const char *key = nullptr;
        r = sd_bus_message_read(message, "s", &key);
        if (r < 0)
            return r;
        if (std::string_view(key) != "Autoclean")
            return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "unknown option '%.64s'",
                                     key);
        if (autoclean)
            return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                    "option Autoclean is given more than once");
        autoclean = true;
        int value = 0;
        r = sd_bus_message_read(message, "v", "b", &value);
        if (r < 0)
            return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                    "option Autoclean takes a boolean");
        options->autoclean = value != 0;
        r = sd_bus_message_exit_container(message);
    }
    if (r < 0)
        return r;
    return sd_bus_message_exit_container(message);
}

}  // namespace lkmd
