// SPDX-License-Identifier: LGPL-2.1-or-later
// lkmd-sim: lkmd's own daemon code on a simulated kernel, for the bus-level tests. Built only
// with the tests, never installed: the product carries no simulator.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "daemon.h"
#include "fake_kernel.h"
#include "log.h"
#include "logging.h"
#include "options.h"

int main(int argc, char **argv) {
    using namespace lkmd;
    // --fake-kernel=FILE is ours; everything else is lkmd's.
    std::string world;
    std::vector<char *> rest;
    for (int i = 0; i < argc; ++i) {
        const std::string_view arg(argv[i]);
        if (i > 0 && arg.starts_with("--fake-kernel="))
            world = std::string(arg.substr(std::strlen("--fake-kernel=")));
        else
            rest.push_back(argv[i]);
    }
    rest.push_back(nullptr);
    Options options;
    std::string error;
    switch (parseOptions(static_cast<int>(rest.size() - 1), rest.data(), &options, &error)) {
        case ParseResult::ExitSuccess:
            return EXIT_SUCCESS;
        case ParseResult::UsageError:
            std::fprintf(stderr, "lkmd-sim: %s\n", error.c_str());
            return 2;
        case ParseResult::Run:
            break;
    }
    if (world.empty() || !options.sysfsGiven || !options.procfsGiven) {
        std::fprintf(stderr,
                     "lkmd-sim: needs --fake-kernel=FILE, and --sysfs and --procfs pointing at "
                     "scratch directories\n");
        return 2;
    }
    setupLogging(options.logLevel);
    int r = 0;
    std::string detail;
    std::shared_ptr<FakeKernel> fake =
        FakeKernel::load(world, options.procfs, options.sysfs, &r, &detail);
    if (!fake) {
        logger("lkmd")->critical("Could not read the fake kernel '{}': {}", detail,
                                 std::strerror(-r));
        return EXIT_FAILURE;
    }
    logger("lkmd")->warn("Simulating the kernel described by '{}' (testing only)", world);
    KernelAccess kernel;
    kernel.backends = [fake] { return std::make_unique<FakeBackend>(fake); };
    kernel.uevents = false;
    kernel.noTracingBecause = "simulated kernel";
    kernel.moduleIndex = [fake](ModuleIndex *index) { return fake->index(index); };
    return runDaemon(options, std::move(kernel));
}
