// SPDX-License-Identifier: LGPL-2.1-or-later
//
// lkmd-modprobe: the program in /proc/sys/kernel/modprobe. The kernel runs it as
// "PATH -q -- NAME" with fds 0-2 closed and waits for its exit status with no timeout
// (docs/kernel.md, "How the kernel asks"): it must answer truthfully, and fast, and never hang the
// kernel on a daemon that is gone or stuck. Hence no logging library, no D-Bus, no config: one
// socket round trip to lkmd, else kmod's modprobe.

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "build_config.h"
#include "fallback_policy.h"
#include "kernel_request.h"
#include "request_name.h"

namespace {

// A daemon that does not acknowledge within this long is stopped or wedged: let kmod do it.
constexpr int kAcceptTimeoutMs = 2000;
// Driver probes can take many seconds (13 s seen for mlxsw_spectrum); past this, kmod joins the
// same load.
constexpr int kVerdictTimeoutMs = 120000;

void ensureStandardFds() {
    for (int fd = 0; fd <= 2; ++fd)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            if (open("/dev/null", O_RDWR) != fd)
                _exit(EXIT_FAILURE);
}

// The kernel starts us with a fixed environment; these overrides exist for tests only.
const char *settingFromEnvironment(const char *variable, const char *fallback) {
    const char *value = getenv(variable);
    return value != nullptr && value[0] == '/' ? value : fallback;
}

// Never exec ourselves: someone may have pointed /sbin/modprobe at this helper.
bool isThisProgram(const char *path) {
    char self[PATH_MAX];
    char target[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0 || realpath(path, target) == nullptr)
        return false;
    self[n] = '\0';
    return std::strcmp(self, target) == 0;
}

// How many kernel requests went to kmod because lkmd did not answer: a count next to the socket
// (lkmd's runtime directory), which lkmd reports as lkmd_helper_fallbacks_total. Best effort:
// nothing here may keep the kernel waiting or fail the request.
void countFallback(const char *socketPath) {
    char path[PATH_MAX];
    const char *slash = std::strrchr(socketPath, '/');
    if (slash == nullptr || static_cast<std::size_t>(slash - socketPath) + 20 >= sizeof(path))
        return;
    std::memcpy(path, socketPath, slash - socketPath);
    std::strcpy(path + (slash - socketPath), "/helper-fallbacks");
    const int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX) == 0) {
        char text[32] = {};
        const ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
        const unsigned long long count = n > 0 ? std::strtoull(text, nullptr, 10) : 0;
        const int length = std::snprintf(text, sizeof(text), "%llu\n", count + 1);
        if (length > 0 && pwrite(fd, text, static_cast<std::size_t>(length), 0) == length)
            [[maybe_unused]]
            const int ignored = ftruncate(fd, length);
    }
    close(fd);
}

// lkmd's policy holds while lkmd does not answer: it leaves what the helper must refuse next to
// the socket (protocol/fallback_policy.h). No file: lkmd never ran, there is no policy to hold.
bool refusedWhileLkmdIsAway(const char *socketPath, const char *name) {
    char path[PATH_MAX];
    const char *slash = std::strrchr(socketPath, '/');
    if (slash == nullptr || static_cast<std::size_t>(slash - socketPath) + 20 >= sizeof(path))
        return false;
    std::memcpy(path, socketPath, slash - socketPath);
    std::strcpy(path + (slash - socketPath), "/fallback-policy");
    const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno != ENOENT;  // there, but unreadable: refuse rather than guess
    std::string text;
    char buffer[65536];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0)
        text.append(buffer, static_cast<std::size_t>(n));
    close(fd);
    return n < 0 || lkmd::fallback::judge(text, name) == lkmd::fallback::Verdict::Refuse;
}

[[noreturn]] void execKmod(char **argv) {
    const char *modprobe = settingFromEnvironment("LKMD_KMOD_MODPROBE", LKMD_KMOD_MODPROBE);
    if (!isThisProgram(modprobe)) {
        argv[0] = const_cast<char *>(modprobe);
        execv(modprobe, argv);
    }
    _exit(EXIT_FAILURE);
}

std::int64_t nowMs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Reads one reply before the deadline: 1 on success, 0 on timeout, -1 when the daemon is gone.
int receiveReply(int fd, std::int64_t deadline, lkmd::wire::Reply *reply) {
    for (;;) {
        const std::int64_t left = deadline - nowMs();
        if (left <= 0)
            return 0;
        pollfd pfd{fd, POLLIN, 0};
        const int r = poll(&pfd, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? 0 : -1;
        std::uint8_t buffer[lkmd::wire::kReplySize + 1];
        const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (lkmd::wire::decodeReply(std::span<const std::uint8_t>(buffer, n), reply) !=
            lkmd::wire::DecodeError::None)
            return -1;
        return 1;
    }
}

}  // namespace

int main(int argc, char **argv) {
    ensureStandardFds();

    // Only the kernel's exact form is ours; anything else is a modprobe invocation.
    if (argc != 4 || std::strcmp(argv[1], "-q") != 0 || std::strcmp(argv[2], "--") != 0)
        execKmod(argv);
    const char *name = argv[3];
    // The kernel's names are at most 55 bytes; anything longer is not a request_module() call.
    if (lkmd::whyInvalidRequestName(name) != nullptr ||
        std::strlen(name) > lkmd::wire::kMaxRequestName)
        return EXIT_FAILURE;
    const std::vector<std::uint8_t> request = lkmd::wire::encodeRequest(name);
    const char *path = settingFromEnvironment("LKMD_REQUEST_SOCKET", LKMD_REQUEST_SOCKET);
    const auto fallBack = [&] {
        if (refusedWhileLkmdIsAway(path, name))
            _exit(EXIT_FAILURE);
        countFallback(path);
        execKmod(argv);
    };

    const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fallBack();
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (std::strlen(path) >= sizeof(address.sun_path))
        fallBack();
    std::strcpy(address.sun_path, path);
    if (connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) < 0 ||
        send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size()))
        fallBack();

    lkmd::wire::Reply reply;
    if (receiveReply(fd, nowMs() + kAcceptTimeoutMs, &reply) != 1)
        fallBack();
    if (reply.kind == lkmd::wire::ReplyKind::Accepted &&
        receiveReply(fd, nowMs() + kVerdictTimeoutMs, &reply) != 1)
        fallBack();
    if (reply.kind != lkmd::wire::ReplyKind::Verdict)
        fallBack();
    // Exit 0 only when the module is there: char-major/block-major callers retry the older alias
    // only on a positive status (docs/kernel.md, "How the kernel asks").
    return reply.status == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
