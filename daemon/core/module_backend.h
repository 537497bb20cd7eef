// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lkmd {

class JobRunner;

enum class ModuleState { Absent, Builtin, Coming, Live, Going };

// One step of a load as modprobe would take it: insert a module with its options, or run the
// install command modprobe.d gives for it in its place.
struct PlanStep {
    std::string module;
    std::string options;
    bool installCommand = false;
    // The module asked for and its dependencies from modules.dep. Soft dependencies (and their
    // own dependencies) are not required: modprobe ignores their failures (an accelerator that
    // refuses this CPU must not stop ext4), and so does lkmd (docs/kernel.md, "Soft
    // dependencies").
    bool required = true;
};

// The kernel as lkmd sees it: module lookup, planning, insertion and removal. Not thread-safe:
// every thread gets its own instance from a BackendFactory (libkmod contexts must not be shared
// between threads). All calls return 0 or a negative errno.
class ModuleBackend {
public:
    virtual ~ModuleBackend() = default;

    // The modules a request names: the module itself, or what its alias resolves to, with kmod's
    // blacklist applied to aliases only (as modprobe does). -ENOENT when nothing matches.
    virtual int resolve(const std::string &request, std::vector<std::string> *modules) = 0;

    // The modules an alias names that kmod's blacklist keeps resolve() from answering, so that
    // lkmctl explain can say why a request finds nothing.
    virtual std::vector<std::string> hiddenByBlacklist(const std::string &request) = 0;

    virtual ModuleState state(const std::string &module) = 0;

    // What loading module takes, in order (soft dependencies, dependencies, the module itself),
    // including what is live now: whether a step is needed is decided when its turn comes (a
    // live dependency may be going by then). Reads indexes only: cheap enough for the loop.
    virtual int plan(const std::string &module, std::vector<PlanStep> *steps) = 0;

    // Carries out one step; blocks for as long as the module's init runs. -EEXIST when the
    // module was there already (someone else inserted it). A failed install command is -EPERM.
    virtual int insert(const PlanStep &step) = 0;

    // delete_module(O_NONBLOCK): -EAGAIN/-EBUSY when in use at that instant, -ENOENT when absent.
    virtual int remove(const std::string &module) = 0;

    // A load whose lookup found nothing asks this before answering: the index may have been
    // rewritten since it was read (a module installed, then its device plugged in). done(true)
    // when lookups now see a newer index than the one that found nothing. Backends whose index
    // cannot go stale answer false at once.
    virtual void recheck(std::function<void(bool changed)> done) { done(false); }

    // This instance serves the loop thread, which must not block: from now on it reads the disk
    // (is the index stale? a new one) only from jobs on runner, and answers recheck() later.
    virtual void serveLoop(JobRunner &runner) { (void)runner; }
};

using BackendFactory = std::function<std::unique_ptr<ModuleBackend>()>;

}  // namespace lkmd
