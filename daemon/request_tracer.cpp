// SPDX-License-Identifier: LGPL-2.1-or-later
#include "request_tracer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "log.h"

namespace lkmd {
namespace {

constexpr const char *kEvent = "events/module/module_request/enable";
// A trace line is short; a longer one is junk and is dropped rather than buffered.
constexpr std::size_t kMaxLine = 4096;
// At most this much per wakeup: a flood of requests must not hold the loop.
constexpr std::size_t kMaxReadPerWakeup = 256 * 1024;

int writeFile(const std::filesystem::path &path, const std::string &text) {
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid())
        return -errno;
    if (write(fd.get(), text.data(), text.size()) < 0)
        return -errno;
    return 0;
}

std::string permissionOrWhat(int error) {
    return error == -EACCES || error == -EPERM || error == -EROFS
               ? std::string("no permission: ") + std::strerror(-error)
               : std::string(std::strerror(-error));
}

}  // namespace

std::unique_ptr<RequestTracer> RequestTracer::create(sd_event *event,
                                                     const std::filesystem::path &tracefs,
                                                     RecordHandler onRecord, std::string *why) {
    std::error_code ec;
    if (!std::filesystem::is_directory(tracefs / "instances", ec)) {
        *why = "tracefs not mounted at " + tracefs.string();
        return nullptr;
    }
    const std::filesystem::path instance = tracefs / "instances" / "lkmd";
    // Left by an lkmd that died: it is ours to reuse.
    if (mkdir(instance.c_str(), 0700) < 0 && errno != EEXIST) {
        *why = "cannot make " + instance.string() + ": " + permissionOrWhat(-errno);
        return nullptr;
    }
    std::unique_ptr<RequestTracer> tracer(new RequestTracer(instance, std::move(onRecord)));
    if (!std::filesystem::exists(instance / kEvent, ec)) {
        *why = "the kernel has no module:module_request event";
        return nullptr;
    }
    tracer->bootClock_ = writeFile(instance / "trace_clock", "boot") == 0;
    // A small buffer of its own, emptied of what an earlier lkmd left: records of requests kmod
    // served while lkmd was down must not be paired with new ones.
    writeFile(instance / "buffer_size_kb", "64");
    UniqueFd(open((instance / "trace").c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    int r = writeFile(instance / kEvent, "1");
    if (r < 0) {
        *why = "cannot enable module:module_request: " + permissionOrWhat(r);
        return nullptr;
    }
    tracer->pipe_.reset(open((instance / "trace_pipe").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!tracer->pipe_.valid()) {
        *why = "cannot open trace_pipe: " + permissionOrWhat(-errno);
        return nullptr;
    }
    sd_event_source *source = nullptr;
    r = sd_event_add_io(event, &source, tracer->pipe_.get(), EPOLLIN, onReadable, tracer.get());
    if (r < 0) {
        *why = std::string("cannot watch trace_pipe: ") + std::strerror(-r);
        return nullptr;
    }
    tracer->source_.reset(source);
    return tracer;
}

RequestTracer::RequestTracer(std::filesystem::path instance, RecordHandler onRecord)
    : instance_(std::move(instance)), onRecord_(std::move(onRecord)) {}

RequestTracer::~RequestTracer() {
    source_.reset();
    pipe_.reset();
    writeFile(instance_ / kEvent, "0");
    // Fails while something else holds a file of it open: then it stays, and is reused.
    rmdir(instance_.c_str());
}

int RequestTracer::onReadable(sd_event_source *, int, uint32_t, void *userdata) {
    static_cast<RequestTracer *>(userdata)->drain();
    return 0;
}

void RequestTracer::drain() {
    char buffer[16384];
    std::size_t total = 0;
    while (total < kMaxReadPerWakeup) {
        const ssize_t n = read(pipe_.get(), buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;  // EAGAIN: drained; epoll wakes us for more
        total += static_cast<std::size_t>(n);
        partial_.append(buffer, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t end; (end = partial_.find('\n', start)) != std::string::npos;
             start = end + 1) {
            if (std::optional<TraceRecord> record =
                    parseModuleRequestTrace(std::string_view(partial_).substr(start, end - start)))
                onRecord_(std::move(*record));
        }
        partial_.erase(0, start);
        if (partial_.size() > kMaxLine) {
            logger("requests")->warn("Dropped an overlong trace record, ignoring");
            partial_.clear();
        }
    }
}

}  // namespace lkmd
