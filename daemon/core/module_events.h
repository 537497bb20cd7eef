// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "module_registry.h"

namespace lkmd {

// What lkmd did to the kernel's set of modules: loads it made and unloads it made.
class ModuleEvents {
public:
    virtual ~ModuleEvents() = default;
    virtual void moduleLoaded(const std::string &module, Origin origin) = 0;
    // reason: "request" for a caller's unload, "idle" for autoclean's.
    virtual void moduleUnloaded(const std::string &module, const std::string &reason) = 0;
};

// Fans events out to every listener (bus signals, autoclean).
class ModuleEventHub final : public ModuleEvents {
public:
    void add(ModuleEvents *listener) { listeners_.push_back(listener); }
    void remove(ModuleEvents *listener) { std::erase(listeners_, listener); }

    void moduleLoaded(const std::string &module, Origin origin) override {
        for (ModuleEvents *listener : std::vector(listeners_))
            listener->moduleLoaded(module, origin);
    }
    void moduleUnloaded(const std::string &module, const std::string &reason) override {
        for (ModuleEvents *listener : std::vector(listeners_))
            listener->moduleUnloaded(module, reason);
    }

private:
    std::vector<ModuleEvents *> listeners_;
};

}  // namespace lkmd
