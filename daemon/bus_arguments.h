// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <string>

#include <systemd/sd-bus.h>

#include "loader.h"

namespace lkmd {

enum class NameKind { Request, Module };

// The name argument of a call. Validated before authorization: polkit should never be asked (nor
// a password typed) for a name lkmd would refuse anyway, and rules only see names that passed.
// Where a module is expected, a name with a '.' is refused (whyInvalidModuleReference()): libkmod
// would cut it there. Module names are resolved later (ModuleQueries::resolve()).
int readName(sd_bus_message *message, NameKind kind, std::string *name, sd_bus_error *error);

// LoadModuleEx's a{sv}: known options once each; anything else refuses the call.
int readLoadOptions(sd_bus_message *message, LoadOptions *options, sd_bus_error *error);

}  // namespace lkmd
