// SPDX-License-Identifier: LGPL-2.1-or-later
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <thread>

#include <systemd/sd-daemon.h>

#include "autoclean.h"
#include "bus_names.h"
#include "bus_service.h"
#include "config.h"
#include "fake_backend.h"
#include "hotplug.h"
#include "kmod_backend.h"
#include "link_kinds.h"
#include "log.h"
#include "manager.h"
#include "options.h"
#include "request_server.h"
#include "sd_ptr.h"
#include "udev_monitor.h"
#include "worker_pool.h"

namespace {

using namespace lkmd;

// More than the kernel's 50 concurrent request_module() helpers (KERNEL-FACTS 3), so that nested
// requests from module inits always find a free worker.
constexpr unsigned kMaxWorkers = 64;

std::uint64_t realtimeUsec() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::uint64_t monotonicUsec() {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// A file with errors is skipped as a whole, so a bad drop-in never leaves a half-read policy.
Config readConfig(const std::filesystem::path &dir) {
    std::vector<ConfigDiagnostic> diagnostics;
    Config config = loadConfig(dir, &diagnostics);
    for (const ConfigDiagnostic &diagnostic : diagnostics)
        logger("lkmd")->log(diagnostic.fatal ? spdlog::level::err : spdlog::level::warn, "{}",
                            formatDiagnostic(diagnostic));
    return config;
}

// Socket activation: systemd may hold the request socket so requests queue while lkmd restarts.
int activatedRequestSocket() {
    const int count = sd_listen_fds(true);
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + count; ++fd)
        if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, nullptr, 0) > 0)
            return fd;
    return -1;
}

int fail(const char *what, int error) {
    logger("lkmd")->critical("{}: {}", what, std::strerror(-error));
    return EXIT_FAILURE;
}

// SIGTERM/SIGINT stop lkmd once the loads and unloads in flight have finished and been answered
// (udevd learned not to kill a probe halfway); SIGHUP re-reads the configuration.
class Signals {
public:
    using Reload = std::function<int(std::string *)>;

    Signals(sd_event *event, Manager &manager, Reload reload)
        : event_(event), manager_(manager), reload_(std::move(reload)) {}

    int start() {
        sigset_t mask;
        sigemptyset(&mask);
        for (int signal : {SIGTERM, SIGINT, SIGHUP})
            sigaddset(&mask, signal);
        if (sigprocmask(SIG_BLOCK, &mask, nullptr) < 0)
            return -errno;
        for (int signal : {SIGTERM, SIGINT, SIGHUP}) {
            sd_event_source *source = nullptr;
            const int r = sd_event_add_signal(event_, &source, signal, onSignal, this);
            if (r < 0)
                return r;
            sources_.emplace_back(source);
        }
        return 0;
    }

private:
    static int onSignal(sd_event_source *, const signalfd_siginfo *info, void *userdata) {
        auto *self = static_cast<Signals *>(userdata);
        if (info->ssi_signo == SIGHUP) {
            std::string problems;
            sd_notify(false, "RELOADING=1");
            self->reload_(&problems);
            sd_notify(false, "READY=1");
            return 0;
        }
        if (self->stopping_)
            return 0;
        self->stopping_ = true;
        const std::size_t pending = self->manager_.workInFlight();
        sd_notifyf(false, "STOPPING=1\nSTATUS=Waiting for %zu loads and unloads in flight",
                   pending);
        if (pending > 0)
            logger("lkmd")->info("Stopping once {} loads and unloads in flight are done", pending);
        self->exitWhenIdle();
        return 0;
    }

    void exitWhenIdle() {
        if (manager_.workInFlight() == 0) {
            sd_event_exit(event_, 0);
            return;
        }
        sd_event_source *source = nullptr;
        if (sd_event_add_time_relative(event_, &source, CLOCK_MONOTONIC, 100'000, 0, onPoll, this) <
            0) {
            sd_event_exit(event_, 0);
            return;
        }
        poll_.reset(source);
    }

    static int onPoll(sd_event_source *, uint64_t, void *userdata) {
        static_cast<Signals *>(userdata)->exitWhenIdle();
        return 0;
    }

    sd_event *event_;
    Manager &manager_;
    Reload reload_;
    std::vector<EventSourcePtr> sources_;
    EventSourcePtr poll_;
    bool stopping_ = false;
};

int run(const Options &options) {
    BackendFactory factory;
    if (!options.fakeKernel.empty()) {
        int error = 0;
        std::string detail;
        std::shared_ptr<FakeKernel> fake =
            FakeKernel::load(options.fakeKernel, options.procfs, options.sysfs, &error, &detail);
        if (!fake) {
            logger("lkmd")->critical("Could not read the fake kernel '{}': {}", detail,
                                     std::strerror(-error));
            return EXIT_FAILURE;
        }
        logger("lkmd")->warn("Simulating the kernel described by '{}' (testing only)",
                             options.fakeKernel.string());
        factory = [fake] { return std::make_unique<FakeBackend>(fake); };
    } else {
        factory = [moduleDir = options.moduleDir]() -> std::unique_ptr<ModuleBackend> {
            int error = 0;
            return KmodBackend::create(moduleDir, &error);
        };
    }
    std::unique_ptr<ModuleBackend> loopBackend = factory();
    if (!loopBackend)
        return fail("Could not open the module index", -ENOENT);

    sd_event *rawEvent = nullptr;
    int r = sd_event_default(&rawEvent);
    if (r < 0)
        return fail("Could not create the event loop", r);
    EventPtr event(rawEvent);
    r = sd_event_set_watchdog(event.get(), true);
    if (r < 0)
        return fail("Could not set up the watchdog", r);

    std::unique_ptr<WorkerPool> pool = WorkerPool::create(event.get(), factory, kMaxWorkers, &r);
    if (!pool)
        return fail("Could not start the worker pool", r);
    KernelState kernel(options.procfs, options.sysfs);
    Manager manager(*loopBackend, *pool, kernel, realtimeUsec, monotonicUsec);
    Config config = readConfig(options.configDir);
    manager.setPolicy(config.policy);
    // The command line beats the configuration, also on reload.
    auto hotplugSettingsOf = [&options](const Config &from) {
        HotplugSettings settings = from.hotplug;
        if (options.hotplug)
            settings.mode = *options.hotplug;
        if (options.coldplug)
            settings.coldplug = *options.coldplug;
        if (options.ueventSource)
            settings.source = *options.ueventSource;
        return settings;
    };
    HotplugSettings hotplugSettings = hotplugSettingsOf(config);

    // /run lives as long as the kernel: what lkmd loaded survives lkmd's own restarts.
    std::error_code ec;
    std::filesystem::create_directories(options.runtimeDir, ec);
    manager.setStateFile(options.runtimeDir / "modules.state");
    manager.restore();

    const bool simulated = !options.fakeKernel.empty();
    Autoclean autoclean(
        event.get(), manager, kernel, config.autoclean, monotonicUsec, realtimeUsec,
        [simulated] {
            std::set<std::string> kinds;
            if (!simulated && readLinkKinds(&kinds) < 0)
                logger("autoclean")->debug("Could not list network links, assuming none");
            return kinds;
        },
        [&loopBackend](const std::string &kind) {
            std::vector<std::string> modules;
            loopBackend->resolve("rtnl-link-" + kind, &modules);
            return modules;
        });
    autoclean.refresh();

    sd_bus *rawBus = nullptr;
    r = sd_bus_open_system(&rawBus);  // honours DBUS_SYSTEM_BUS_ADDRESS
    if (r < 0)
        return fail("Could not connect to the system bus", r);
    BusPtr bus(rawBus);
    BusService service(bus.get(), manager, autoclean);

    // Coldplug bounds its own parallelism; a few loads per CPU keep probes overlapping (a probe
    // mostly waits on hardware) without a thundering herd of finit_module calls.
    Hotplug hotplug(manager, options.sysfs, HotplugMode::Off,
                    std::max(4u, 2 * std::thread::hardware_concurrency()));
    hotplug.setDeviceGoneHandler([&autoclean] { autoclean.deviceGone(); });
    std::unique_ptr<UdevMonitor> monitor;
    std::optional<UeventSourceKind> monitorSource;
    // Puts hotplug settings in force, at start and on reload: a monitor only while not off, a
    // new one when the source changes.
    auto applyHotplug = [&](const HotplugSettings &settings, bool starting) {
        const HotplugMode previous = starting ? HotplugMode::Off : hotplugSettings.mode;
        int error = 0;
        // A simulated kernel has no uevents of its own; the host's belong to another kernel.
        if (settings.mode == HotplugMode::Off || simulated) {
            monitor.reset();
            monitorSource.reset();
        } else if (!monitor || monitorSource != settings.source) {
            std::unique_ptr<UdevMonitor> next =
                UdevMonitor::create(event.get(), settings.source, &error);
            if (next)
                error = hotplug.start(*next);
            if (error < 0)
                return error;
            monitor = std::move(next);
            monitorSource = settings.source;
        }
        hotplug.setMode(settings.mode);
        autoclean.setDeviceEvents(monitor != nullptr);
        hotplugSettings = settings;
        if (!starting && settings.mode == previous)
            return 0;
        if (monitor)
            logger("hotplug")->info(
                "Listening to {} uevents ({})", monitor->sourceName(),
                settings.mode == HotplugMode::Load ? "loading drivers" : "observing only");
        else if (!starting && settings.mode == HotplugMode::Off)
            logger("hotplug")->info("Hotplug is off: uevents are not listened to");
        return 0;
    };

    // Reload keeps the running configuration whole when the new one has an error anywhere.
    auto reload = [&](std::string *problems) {
        std::vector<ConfigDiagnostic> diagnostics;
        Config next = loadConfig(options.configDir, &diagnostics);
        bool fatal = false;
        for (const ConfigDiagnostic &diagnostic : diagnostics) {
            logger("lkmd")->log(diagnostic.fatal ? spdlog::level::err : spdlog::level::warn, "{}",
                                formatDiagnostic(diagnostic));
            if (diagnostic.fatal && diagnostic.line > 0) {
                fatal = true;
                *problems += (problems->empty() ? "" : "; ") + formatDiagnostic(diagnostic);
            }
        }
        if (fatal) {
            logger("lkmd")->warn("Configuration has errors, keeping the running one");
            return -EBADMSG;
        }
        // The one step that can fail for another reason than the files: first, so that a
        // failure leaves everything as it was.
        const HotplugSettings nextHotplug = hotplugSettingsOf(next);
        // A switch to load catches up on the devices that appeared meanwhile, as coldplug does
        // at start (when Coldplug= allows); under the new policy, so after it is in force.
        const bool catchUp = nextHotplug.mode == HotplugMode::Load &&
                             hotplugSettings.mode != HotplugMode::Load && nextHotplug.coldplug;
        const int error = applyHotplug(nextHotplug, false);
        if (error < 0) {
            const std::string why =
                std::string("could not listen for uevents: ") + std::strerror(-error);
            logger("hotplug")->error("{}; keeping the running configuration", why);
            *problems = why;
            return -EBADMSG;
        }
        manager.setPolicy(next.policy);
        autoclean.setSettings(next.autoclean);
        logger("lkmd")->info("Reloaded the configuration from '{}'", options.configDir.string());
        if (catchUp)
            hotplug.coldplug();
        return 0;
    };
    service.setReloadHandler(reload);
    Signals signals(event.get(), manager, reload);
    r = signals.start();
    if (r < 0)
        return fail("Could not handle signals", r);
    r = service.start();
    if (r < 0)
        return fail("Could not register org.lkmd1.Manager", r);
    r = sd_bus_attach_event(bus.get(), event.get(), SD_EVENT_PRIORITY_NORMAL);
    if (r < 0)
        return fail("Could not attach the bus to the event loop", r);
    // Without a bus nobody can reach us; exit and let the service manager restart us.
    r = sd_bus_set_exit_on_disconnect(bus.get(), true);
    if (r < 0)
        return fail("Could not watch the bus connection", r);
    r = sd_bus_request_name(bus.get(), bus::kServiceName, 0);
    if (r < 0)
        return fail("Could not acquire the name org.lkmd1", r);

    // After the bus name: a second instance fails there, before touching the first one's socket.
    const std::filesystem::path socketPath = options.runtimeDir / "kernel-request.sock";
    std::unique_ptr<RequestServer> requests =
        RequestServer::create(event.get(), manager, socketPath, activatedRequestSocket(), &r);
    if (!requests)
        return fail("Could not listen for kernel requests", r);

    r = applyHotplug(hotplugSettings, true);
    if (r < 0)
        return fail("Could not listen for uevents", r);

    logger("lkmd")->info("Serving {} on the system bus and kernel requests on '{}'",
                         bus::kServiceName, socketPath.string());
    // Ready before coldplug finishes: requests are served meanwhile, and coldplug loads go
    // through the same merging as everything else.
    if (hotplugSettings.coldplug)
        hotplug.coldplug();
    sd_notify(false, "READY=1\nSTATUS=Serving org.lkmd1");
    r = sd_event_loop(event.get());
    pool.reset();  // joins the workers, though Signals already waited for them to be idle
    return r < 0 ? fail("Event loop failed", r) : EXIT_SUCCESS;
}

// The kernel may start us with fds 0-2 closed; never let a later open() land on them.
void ensureStandardFds() {
    for (int fd = 0; fd <= 2; ++fd)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            open("/dev/null", O_RDWR | O_CLOEXEC);
}

}  // namespace

int main(int argc, char **argv) {
    ensureStandardFds();
    // A daemon that mostly sleeps: workers come and go, and glibc's per-thread arenas and
    // transparent huge pages would keep megabytes of their memory private to lkmd for good.
    mallopt(M_ARENA_MAX, 2);
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
    return run(options);
}
