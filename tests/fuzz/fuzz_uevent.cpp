// SPDX-License-Identifier: LGPL-2.1-or-later
// Uevents as the netlink socket hands them over: Hotplug::handle() over a stub backend that
// answers every lookup. Fields: ACTION, DEVPATH, SUBSYSTEM, MODALIAS. Nothing throws, and only a
// device under /devices without "..", with a valid modalias, ever reaches a lookup.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "hotplug.h"
#include "load_coordinator.h"
#include "loader.h"
#include "module_events.h"
#include "module_registry.h"
#include "request_log.h"
#include "stub_world.h"

namespace {

// Every lookup finds one module that is live already: the load ends in admission, and each
// input costs microseconds.
class StubBackend final : public lkmd::ModuleBackend {
public:
    int resolve(const std::string &request, std::vector<std::string> *modules) override {
        ++lookups;
        last = request;
        *modules = {"stub"};
        return 0;
    }
    std::vector<std::string> hiddenByBlacklist(const std::string &) override { return {}; }
    lkmd::ModuleState state(const std::string &) override { return lkmd::ModuleState::Live; }
    int plan(const std::string &, std::vector<lkmd::PlanStep> *) override { return -ENOENT; }
    int insert(const lkmd::PlanStep &) override { return -ENOENT; }
    int remove(const std::string &) override { return -ENOENT; }

    std::size_t lookups = 0;
    std::string last;
};

struct World {
    World() : runner(backend), kernel(sysfs.root() / "proc", sysfs.root() / "sys") {
        coordinator = std::make_unique<lkmd::LoadCoordinator>(backend, runner, scheduler, registry,
                                                              kernel, events, nullptr);
        loader = std::make_unique<lkmd::Loader>(backend, *coordinator, requests, scheduler);
        hotplug = std::make_unique<lkmd::Hotplug>(*loader, runner, sysfs.root() / "sys",
                                                  lkmd::HotplugMode::Load, 4);
        hotplug->setDeviceGoneHandler([this] { ++gone; });
    }

    StubSysfs sysfs;
    StubBackend backend;
    InlineJobRunner runner;
    FixedScheduler scheduler;
    lkmd::ModuleRegistry registry;
    lkmd::KernelState kernel;
    lkmd::ModuleEventHub events;
    lkmd::RequestLog requests;
    std::unique_ptr<lkmd::LoadCoordinator> coordinator;
    std::unique_ptr<lkmd::Loader> loader;
    std::unique_ptr<lkmd::Hotplug> hotplug;
    std::size_t gone = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    static World world;
    const std::vector<std::string> fields = fuzzFields(data, size, 4);
    const lkmd::Uevent event{fields[0], fields[1], fields[2], fields[3]};
    const std::size_t before = world.backend.lookups;
    world.hotplug->handle(event);
    world.runner.runAll();
    if (world.backend.lookups != before) {
        FUZZ_ASSERT(event.action == "add" && event.subsystem != "module");
        FUZZ_ASSERT(event.devpath.starts_with("/devices/"));
        FUZZ_ASSERT(event.devpath.find("..") == std::string::npos);
        FUZZ_ASSERT(lkmd::whyInvalidModalias(event.modalias) == nullptr);
        FUZZ_ASSERT(world.backend.last == event.modalias);
    }
    return 0;
}
