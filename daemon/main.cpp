// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fcntl.h>
#include <malloc.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "daemon.h"
#include "kmod_backend.h"
#include "link_kinds.h"
#include "logging.h"
#include "options.h"

namespace {

// The kernel may start us with fds 0-2 closed; never let a later open() land on them.
void ensureStandardFds() {
    for (int fd = 0; fd <= 2; ++fd)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            open("/dev/null", O_RDWR | O_CLOEXEC);
}

}  // namespace

int main(int argc, char **argv) {
    using namespace lkmd;
    ensureStandardFds();
    // A daemon that mostly sleeps: workers come and go, and glibc's per-thread arenas and
    // transparent huge pages would keep megabytes of their memory private to lkmd for good. One
    // arena: what a worker allocated and the loop keeps (a record's strings) would pin a second
    // arena's pages after malloc_trim; the big buffers of a load are mmap()ed outside arenas.
    mallopt(M_ARENA_MAX, 1);
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    Options options;
    std::string error;
    switch (parseOptions(argc, argv, &options, &error)) {
        case ParseResult::ExitSuccess:
            return EXIT_SUCCESS;
        case ParseResult::UsageError:
            std::fprintf(stderr, "lkmd: %s\nTry 'lkmd --help'.\n", error.c_str());
            return 2;
        case ParseResult::Run:
            break;
    }
    setupLogging(options.logLevel);
    KernelAccess kernel;
    kernel.backends = [moduleDir = options.moduleDir]() -> std::unique_ptr<ModuleBackend> {
        int ignored = 0;
        return KmodBackend::create(moduleDir, &ignored);
    };
    kernel.linkKinds = readLinkKinds;
    kernel.tracefs = options.tracefs;
    kernel.moduleIndex = [moduleDir = options.moduleDir](ModuleIndex *index) {
        return readModuleIndex(moduleDir, index);
    };
    return runDaemon(options, std::move(kernel));
}
