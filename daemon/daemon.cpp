// SPDX-License-Identifier: LGPL-2.1-or-later
#include "daemon.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include <systemd/sd-daemon.h>

#include "autoclean.h"
#include "bus_names.h"
#include "bus_service.h"
#include "config.h"
#include "event_scheduler.h"
#include "fallback_writer.h"
#include "history_keeper.h"
#include "hotplug_sources.h"
#include "load_coordinator.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "metrics_export.h"
#include "module_queries.h"
#include "request_log.h"
#include "request_server.h"
#include "request_tracer.h"
#include "requester_matcher.h"
#include "sd_ptr.h"
#include "service_status.h"
#include "signal_watch.h"
#include "state_file.h"
#include "system_bus.h"
#include "unique_fd.h"
#include "unloader.h"
#include "worker_pool.h"

namespace lkmd {
namespace {

// More than the kernel's 50 concurrent request_module() helpers (docs/kernel.md, "How the kernel
// asks"), so that nested requests from module inits always find a free worker.
constexpr unsigned kMaxWorkers = 64;

// Socket activation: systemd may hold the request socket so requests queue while lkmd restarts.
int activatedRequestSocket() {
    const int count = sd_listen_fds(true);
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + count; ++fd)
        if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, nullptr, 0) > 0)
            return fd;
    return -1;
}

// Logs every problem loadConfig found; they are in force all the same, minus the bad lines.
std::vector<std::string> reportConfig(const std::vector<ConfigDiagnostic> &diagnostics) {
    std::vector<std::string> problems;
    for (const ConfigDiagnostic &diagnostic : diagnostics) {
        problems.push_back(formatDiagnostic(diagnostic));
        logger("lkmd")->error("{}", problems.back());
    }
    return problems;
}

const char *hotplugModeName(HotplugMode mode) {
    switch (mode) {
        case HotplugMode::Load:
            return "load";
        case HotplugMode::Observe:
            return "observe";
        case HotplugMode::Off:
            return "off";
    }
    return "";
}

class Daemon {
public:
    Daemon(const Options &options, KernelAccess access)
        : options_(options), access_(std::move(access)) {}

    int run() {
        int r = SignalWatch::blockSignals();
        if (r < 0)
            return fail("Could not block signals", r);
        r = lockRuntimeDir();
        if (r < 0)
            return fail(r == -EWOULDBLOCK ? "Another lkmd is running with its runtime directory"
                                          : "Could not lock the runtime directory",
                        r);
        r = openKernel();
        if (r < 0)
            return fail("Could not open the module index", r);
        restoreState();
        restoreHistory();
        r = connectBus();
        if (r < 0)
            return r;
        r = startSources();
        if (r < 0)
            return r;
        return serve();
    }

private:
    static int fail(const char *what, int error) {
        logger("lkmd")->critical("{}: {}", what, std::strerror(-error));
        return EXIT_FAILURE;
    }

    // One lkmd per runtime directory, checked before anything of the first one's is touched (its
    // state file, its request socket): the bus name comes too late for that.
    int lockRuntimeDir() {
        std::error_code ec;
        std::filesystem::create_directories(options_.runtimeDir, ec);
        runtimeLock_ =
            UniqueFd(open(options_.runtimeDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!runtimeLock_.valid() || flock(runtimeLock_.get(), LOCK_EX | LOCK_NB) < 0)
            return -errno;
        return 0;
    }

    // The loop, the workers and the core that owns every record.
    int openKernel() {
        loopBackend_ = access_.backends();
        if (!loopBackend_)
            return -ENOENT;
        sd_event *raw = nullptr;
        int r = sd_event_default(&raw);
        if (r < 0)
            return r;
        event_.reset(raw);
        r = sd_event_set_watchdog(event_.get(), true);
        if (r < 0)
            return r;
        scheduler_ = std::make_unique<EventScheduler>(event_.get());
        pool_ = WorkerPool::create(event_.get(), access_.backends, kMaxWorkers, &r);
        if (!pool_)
            return r;
        loopBackend_->serveLoop(*pool_);
        kernel_ = std::make_unique<KernelState>(options_.procfs, options_.sysfs);
        // /run lives as long as the kernel: what lkmd loaded survives lkmd's own restarts.
        stateFile_ = std::make_unique<StateFile>(options_.runtimeDir / "modules.state");
        coordinator_ = std::make_unique<LoadCoordinator>(
            *loopBackend_, *pool_, *scheduler_, registry_, *kernel_, events_, stateFile_.get(),
            &insertingThreads_, &metrics_);
        requesters_ = std::make_unique<RequesterMatcher>(
            *scheduler_, [this](const TraceRecord &record) { return identify(record); });
        loader_ = std::make_unique<Loader>(*loopBackend_, *coordinator_, requests_, *scheduler_,
                                           &metrics_);
        probe_ = std::make_unique<UseProbe>(*kernel_, access_.linkKinds);
        unloader_ = std::make_unique<Unloader>(*loopBackend_, *coordinator_, *pool_, registry_,
                                               *probe_, events_, &metrics_);
        queries_ = std::make_unique<ModuleQueries>(*loopBackend_, registry_, *kernel_);
        history_ =
            std::make_unique<HistoryKeeper>(options_.stateDir / "history", *pool_, *scheduler_);

        std::vector<ConfigDiagnostic> diagnostics;
        Config config = loadConfig(configSearch(options_), &diagnostics);
        status_.configErrors = reportConfig(diagnostics);
        status_.configFiles = config.files;
        status_.startedAtUsec = scheduler_->realtimeUsec();
        status_.staticUsermodeHelper = readStaticUsermodeHelper();
        status_.idleTimeoutUsec = config.autoclean.idleTimeoutUsec;
        loader_->setPolicy(config.policy);
        loader_->setRequestLimit(config.limit);
        fallback_ = std::make_unique<FallbackWriter>(*pool_, access_.moduleIndex,
                                                     options_.runtimeDir, options_.modprobeDir);
        fallback_->publish(config.policy);
        autoclean_ = std::make_unique<Autoclean>(*scheduler_, *pool_, registry_, *unloader_,
                                                 *probe_, config.autoclean, &metrics_);
        metricsExport_ =
            std::make_unique<MetricsExport>(metrics_, *scheduler_, *pool_, options_.metricsDir,
                                            options_.runtimeDir / "helper-fallbacks", [this] {
                                                if (service_)
                                                    service_->metricsChanged();
                                            });
        metricsExport_->schedule();
        events_.add(autoclean_.get());
        // Device loads (hotplug and coldplug) are bounded as udevd bounds its workers (8 + 2 per
        // CPU): enough for probes that wait on hardware to overlap, without a thundering herd of
        // finit_module calls that only slow each other down.
        hotplug_ = std::make_unique<HotplugSources>(
            event_.get(), *loader_, *pool_, *autoclean_, options_.sysfs,
            std::min(8 + 2 * std::max(1u, std::thread::hardware_concurrency()),
                     kMaxWorkers / 2),  // kernel requests and bus calls keep workers too
            access_.uevents);
        hotplugSettings_ = effectiveHotplug(config, options_);
        status_.hotplugMode = hotplugModeName(hotplugSettings_.mode);
        return 0;
    }

    void restoreState() {
        std::string text;
        if (stateFile_->read(&text) == 0) {
            RestoreCounts counts;
            const auto identityOf = [this](const std::string &module) {
                return kernel_->moduleIdentity(module);
            };
            if (restoreRegistry(text, identityOf, &registry_, &counts) < 0)
                logger("loader")->warn("Ignoring '{}': not a state file of this version",
                                       stateFile_->path().string());
            else
                logger("loader")->info(
                    "Restored {} module records from '{}' ({} interrupted insertions adopted, "
                    "{} gone, {} invalid)",
                    counts.kept + counts.adopted, stateFile_->path().string(), counts.adopted,
                    counts.dropped, counts.skipped);
        }
        persistRegistry(registry_, *stateFile_, *pool_);
        if (stateFile_->stage(registry_.serialize()))
            stateFile_->flush();
        autoclean_->refresh();
    }

    // What this host needed before, for lkmctl policy suggest. Never fatal: without a state dir
    // the history lives in memory and each write failure is logged.
    void restoreHistory() {
        std::error_code ec;
        std::filesystem::create_directories(options_.stateDir, ec);
        if (ec)
            logger("lkmd")->warn("Could not create '{}': {}, ignoring", options_.stateDir.string(),
                                 ec.message());
        if (const std::string problem = history_->restore(); !problem.empty())
            logger("lkmd")->warn("{}", problem);
        requests_.setListener([this](const RequestRecord &record) {
            history_->note(record);
            if (service_)
                service_->requestAnswered(record);
        });
    }

    // Not waited for: the connection comes when dbus-daemon does (system_bus.h).
    int connectBus() {
        int r = SystemBus::open(
            event_.get(),
            [this](const std::string &what, int error) {
                // At shutdown dbus-daemon may go first: lkmd is stopping anyway.
                if (stopping_) {
                    logger("lkmd")->info("{} while stopping", what);
                    return;
                }
                logger("lkmd")->critical("{}: {}", what, std::strerror(-error));
                exitStatus_ = EXIT_FAILURE;
                stop();  // the loads in flight finish and are answered first
            },
            &bus_);
        if (r < 0)
            return fail("Could not connect to the system bus", r);
        service_ = std::make_unique<BusService>(
            bus_->get(), BusServices{*loader_, *unloader_, *queries_, registry_, *autoclean_,
                                     requests_, events_, options_.procfs, metrics_, *kernel_,
                                     status_, *loopBackend_, *coordinator_, history_->history()});
        service_->setReloadHandler(
            [this](BusService::ReloadDone done) { reload(std::move(done)); });
        r = service_->start();
        if (r < 0)
            return fail("Could not register org.lkmd1.Manager", r);
        r = bus_->requestName(bus::kServiceName);
        if (r < 0)
            return fail("Could not ask for the name org.lkmd1", r);
        return 0;
    }

    int startSources() {
        int r = 0;
        signals_ = SignalWatch::create(
            event_.get(), [this] { stop(); },
            [this] {
                sd_notify(false, "RELOADING=1");
                reload([](int, const std::string &) { sd_notify(false, "READY=1"); });
            },
            &r);
        if (!signals_)
            return fail("Could not handle signals", r);
        startTracing();
        socketPath_ = options_.runtimeDir / "kernel-request.sock";
        requestServer_ = RequestServer::create(event_.get(), *loader_, *requesters_, socketPath_,
                                               activatedRequestSocket(), &r);
        if (!requestServer_)
            return fail("Could not listen for kernel requests", r);
        r = hotplug_->apply(hotplugSettings_, true);
        if (r < 0)
            return fail("Could not listen for uevents", r);
        return 0;
    }

    // Without a trace, requests are still served; their requesters are "unknown" and why.
    void startTracing() {
        std::string why = access_.noTracingBecause;
        if (!access_.tracefs.empty())
            tracer_ = RequestTracer::create(
                event_.get(), access_.tracefs,
                [this](TraceRecord record) { requesters_->traced(std::move(record)); }, &why);
        if (tracer_) {
            requesters_->setAvailable();
            return;
        }
        requesters_->setUnavailable("tracefs unavailable: " + why);
        logger("requests")
            ->info("Who makes kernel requests stays unknown: tracefs unavailable: {}", why);
    }

    // Read while the requester waits in request_module(); a thread of lkmd's own is an init
    // asking from inside lkmd's insertion.
    Requester identify(const TraceRecord &record) {
        const std::optional<std::uint64_t> at =
            tracer_ && tracer_->bootClock() ? std::optional(record.timestampUsec) : std::nullopt;
        Requester requester = readRequester(options_.procfs, record.pid, at);
        if (!requester.known)
            requester.unknownBecause += " ('" + record.comm + "' in the trace)";
        requester.callSite = record.callSite;
        if (std::optional<std::string> module = insertingThreads_.moduleOf(record.pid))
            requester.fromInitOf = *module;
        return requester;
    }

    int serve() {
        logger("lkmd")->info("Serving {} on the system bus and kernel requests on '{}'",
                             bus::kServiceName, socketPath_.string());
        // Ready before coldplug finishes: requests are served meanwhile, and coldplug loads go
        // through the same coordinator as everything else.
        if (hotplugSettings_.coldplug)
            hotplug_->coldplug();
        sd_notify(false, "READY=1\nSTATUS=Serving org.lkmd1");
        const int r = sd_event_loop(event_.get());
        if (stateFile_->flush() < 0)
            logger("lkmd")->warn("Could not write '{}' at exit", stateFile_->path().string());
        if (history_->flush() < 0)
            logger("lkmd")->warn("Could not write '{}' at exit", history_->path().string());
        if (r < 0)
            return fail("Event loop failed", r);
        return r == 0 ? exitStatus_ : EXIT_FAILURE;  // sd_event_exit()'s code
    }

    void stop() {
        if (stopping_)
            return;
        stopping_ = true;
        const std::size_t pending = coordinator_->inFlight();
        sd_notifyf(false, "STOPPING=1\nSTATUS=Waiting for %zu loads and unloads in flight",
                   pending);
        if (pending == 0) {
            sd_event_exit(event_.get(), 0);
            return;
        }
        logger("lkmd")->info("Stopping once {} loads and unloads in flight are done", pending);
        coordinator_->setIdleHandler([this] { sd_event_exit(event_.get(), 0); });
    }

    // Puts every valid line in force, as at start: a bad line never costs the rules around it.
    // -EBADMSG (with *problems) when some line was bad, so that `systemctl reload` says so. The
    // status shows the files and problems of this read either way.
    void reload(BusService::ReloadDone done) {
        // done waits for both the configuration read and the files written, in either order
        // (a job runner may complete the write before applyConfig returns).
        struct Join {
            int result = 0;
            std::string problems;
            int pending = 2;
            BusService::ReloadDone done;
        };
        auto join = std::make_shared<Join>();
        join->done = std::move(done);
        const auto arrive = [join] {
            if (--join->pending == 0 && join->done)
                join->done(join->result, join->problems);
        };
        join->result = applyConfig(&join->problems, arrive);
        service_->statusChanged();
        arrive();
    }

    int applyConfig(std::string *problems, std::function<void()> written) {
        std::vector<ConfigDiagnostic> diagnostics;
        Config next = loadConfig(configSearch(options_), &diagnostics);
        std::vector<std::string> &found = status_.configErrors;
        found = reportConfig(diagnostics);
        status_.configFiles = next.files;
        status_.idleTimeoutUsec = next.autoclean.idleTimeoutUsec;
        loader_->setPolicy(next.policy);
        loader_->setRequestLimit(next.limit);
        fallback_->publish(next.policy, std::move(written));
        autoclean_->setSettings(next.autoclean);
        // The hotplug monitor is the one step that can fail for another reason than the files;
        // then the running hotplug settings stay. A switch to load catches up on the devices
        // that appeared meanwhile, as coldplug does at start (when Coldplug= allows), under the
        // new policy.
        const HotplugSettings nextHotplug = effectiveHotplug(next, options_);
        const bool catchUp = nextHotplug.mode == HotplugMode::Load &&
                             hotplugSettings_.mode != HotplugMode::Load && nextHotplug.coldplug;
        if (const int error = hotplug_->apply(nextHotplug, false); error < 0) {
            found.push_back(std::string("could not listen for uevents: ") + std::strerror(-error) +
                            "; keeping the hotplug settings");
            logger("hotplug")->error("{}", found.back());
        } else {
            hotplugSettings_ = nextHotplug;
            status_.hotplugMode = hotplugModeName(nextHotplug.mode);
            if (catchUp)
                hotplug_->coldplug();
        }
        logger("lkmd")->info("Reloaded the configuration ({} files, {} problems)",
                             status_.configFiles.size(), found.size());
        for (const std::string &problem : found)
            *problems += (problems->empty() ? "" : "; ") + problem;
        return found.empty() ? 0 : -EBADMSG;
    }

    const Options &options_;
    KernelAccess access_;
    EventPtr event_;
    std::unique_ptr<EventScheduler> scheduler_;
    std::unique_ptr<ModuleBackend> loopBackend_;
    std::unique_ptr<KernelState> kernel_;
    std::unique_ptr<StateFile> stateFile_;
    ModuleRegistry registry_;
    ModuleEventHub events_;
    RequestLog requests_;
    Metrics metrics_;
    std::unique_ptr<MetricsExport> metricsExport_;
    InsertingThreads insertingThreads_;
    std::unique_ptr<RequesterMatcher> requesters_;
    std::unique_ptr<RequestTracer> tracer_;
    std::unique_ptr<LoadCoordinator> coordinator_;
    std::unique_ptr<Loader> loader_;
    std::unique_ptr<UseProbe> probe_;
    std::unique_ptr<Unloader> unloader_;
    std::unique_ptr<ModuleQueries> queries_;
    std::unique_ptr<HistoryKeeper> history_;
    std::unique_ptr<Autoclean> autoclean_;
    std::unique_ptr<FallbackWriter> fallback_;
    std::unique_ptr<HotplugSources> hotplug_;
    HotplugSettings hotplugSettings_;
    UniqueFd runtimeLock_;
    std::unique_ptr<SystemBus> bus_;
    std::unique_ptr<BusService> service_;
    std::filesystem::path socketPath_;
    std::unique_ptr<RequestServer> requestServer_;
    std::unique_ptr<SignalWatch> signals_;
    bool stopping_ = false;
    int exitStatus_ = EXIT_SUCCESS;
    ServiceStatus status_;  // files and problems of the last read, among the rest
    // Declared last, so destroyed first: jobs still queued or running use what the members
    // above own, and the pool's destructor waits for them.
    std::unique_ptr<WorkerPool> pool_;
};

}  // namespace

int runDaemon(const Options &options, KernelAccess kernel) {
    Daemon daemon(options, std::move(kernel));
    return daemon.run();
}

}  // namespace lkmd
