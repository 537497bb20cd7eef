// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lkmd {

enum class ModuleState { Absent, Builtin, Coming, Live, Going };

// How the caller steers an insertion that runs on another thread.
struct InsertControl {
    // Asked for every module about to be inserted, dependencies included, before anything is
    // inserted; a false answer fails the whole load with -EACCES. Empty: everything is allowed.
    std::function<bool(const std::string &module)> allowed;
    // Told each module just before its insertion (its init may then run for a while).
    std::function<void(const std::string &module)> inserting;
};

// The kernel as lkmd sees it: module lookup, insertion and removal. Not thread-safe: every thread
// gets its own instance from a BackendFactory (libkmod contexts must not be shared between
// threads). All calls return 0 or a negative errno.
class ModuleBackend {
public:
    virtual ~ModuleBackend() = default;

    // The modules a request names: the module itself, or what its alias resolves to, with kmod's
    // blacklist applied to aliases only (as modprobe does). -ENOENT when nothing matches.
    virtual int resolve(const std::string &request, std::vector<std::string> *modules) = 0;

    virtual ModuleState state(const std::string &module) = 0;

    // Blocks for as long as the module's init runs. Fills inserted with every module this call
    // inserted, dependencies first; one that someone else inserted meanwhile is not listed. An
    // already loaded or built-in module inserts nothing and succeeds. On failure, *failed names
    // the module that control.allowed refused (-EACCES) or that could not be inserted.
    virtual int insert(const std::string &module, const InsertControl &control,
                       std::vector<std::string> *inserted, std::string *failed) = 0;

    // delete_module(O_NONBLOCK): -EAGAIN/-EBUSY when in use at that instant, -ENOENT when absent.
    virtual int remove(const std::string &module) = 0;
};

using BackendFactory = std::function<std::unique_ptr<ModuleBackend>()>;

}  // namespace lkmd
