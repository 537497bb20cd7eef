// SPDX-License-Identifier: LGPL-2.1-or-later
#include "request_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "kernel_request.h"
#include "log.h"

namespace lkmd {

std::unique_ptr<RequestServer> RequestServer::create(sd_event *event, Loader &loader,
                                                     RequesterMatcher &requesters,
                                                     const std::filesystem::path &path,
                                                     int listenFd, int *error) {
    std::unique_ptr<RequestServer> server(new RequestServer(event, loader, requesters));
    if (listenFd >= 0) {
        // systemd hands the socket over in blocking mode; accept() until EAGAIN would then block
        // the event loop on the second call.
        const int flags = fcntl(listenFd, F_GETFL);
        if (flags < 0 || fcntl(listenFd, F_SETFL, flags | O_NONBLOCK) < 0) {
            *error = -errno;
            return nullptr;
        }
        server->listenFd_.reset(listenFd);
    } else {
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        if (path.string().size() >= sizeof(address.sun_path)) {
            *error = -ENAMETOOLONG;
            return nullptr;
        }
        std::strcpy(address.sun_path, path.c_str());
        std::error_code ec;
        std::filesystem::create_directories(path.parent_path(), ec);
        server->listenFd_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!server->listenFd_.valid()) {
            *error = -errno;
            return nullptr;
        }
        unlink(path.c_str());  // left over by a previous instance that died
        // Root only: the kernel's helper runs as root, and nobody else may trigger loads.
        const mode_t previous = umask(0177);
        const int r =
            bind(server->listenFd_.get(), reinterpret_cast<sockaddr *>(&address), sizeof(address));
        umask(previous);
        if (r < 0 || listen(server->listenFd_.get(), SOMAXCONN) < 0) {
            *error = -errno;
            return nullptr;
        }
        server->ownedPath_ = path;
    }
    sd_event_source *source = nullptr;
    *error = sd_event_add_io(event, &source, server->listenFd_.get(), EPOLLIN, onListenReadable,
                             server.get());
    if (*error < 0)
        return nullptr;
    server->listenSource_.reset(source);
    return server;
}

RequestServer::RequestServer(sd_event *event, Loader &loader, RequesterMatcher &requesters)
    : event_(event), loader_(loader), requesters_(requesters) {}

RequestServer::~RequestServer() {
    while (!connections_.empty())
        drop(connections_.begin()->first);
    listenSource_.reset();
    if (!ownedPath_.empty())
        unlink(ownedPath_.c_str());
}

void RequestServer::accept() {
    for (;;) {
        UniqueFd fd(accept4(listenFd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                logger("requests")
                    ->warn("Could not accept a kernel request: {}, will retry",
                           std::strerror(errno));
            return;
        }
        ucred peer{};
        socklen_t length = sizeof(peer);
        if (getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &length) < 0 || peer.uid != 0) {
            logger("requests")
                ->warn("Refusing a kernel request from uid {} (pid {}), ignoring", peer.uid,
                       peer.pid);
            continue;
        }
        // Closing makes lkmd-modprobe fall back to kmod's modprobe: the request is not lost.
        if (connections_.size() >= kMaxConnections) {
            logger("requests")
                ->warn("{} kernel requests pending, passing one to modprobe", connections_.size());
            continue;
        }
        auto connection = std::make_unique<Connection>();
        connection->server = this;
        connection->id = nextId_++;
        connection->fd = std::move(fd);
        sd_event_source *io = nullptr;
        sd_event_source *silence = nullptr;
        if (sd_event_add_io(event_, &io, connection->fd.get(), EPOLLIN, onConnectionReadable,
                            connection.get()) < 0 ||
            sd_event_add_time_relative(event_, &silence, CLOCK_MONOTONIC, kSilenceTimeoutUsec, 0,
                                       onSilence, connection.get()) < 0) {
            if (io != nullptr)
                sd_event_source_disable_unref(io);
            continue;
        }
        connection->io.reset(io);
        connection->silence.reset(silence);
        connections_.emplace(connection->id, std::move(connection));
    }
}

void RequestServer::receive(Connection &connection) {
    std::vector<std::uint8_t> buffer(wire::kMaxRequestSize + 1);
    // MSG_TRUNC makes recv() report an oversized datagram's real length.
    const ssize_t n =
        recv(connection.fd.get(), buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop(connection.id);
        return;
    }
    buffer.resize(std::min<std::size_t>(n, buffer.size()));
    std::string name;
    const wire::DecodeError error =
        static_cast<std::size_t>(n) > wire::kMaxRequestSize
            ? wire::DecodeError::TooLong
            : wire::decodeRequest(std::span<const std::uint8_t>(buffer), &name);
    connection.silence.reset();
    sd_event_source_set_enabled(connection.io.get(), SD_EVENT_OFF);
    if (error != wire::DecodeError::None) {
        logger("requests")
            ->warn("Malformed kernel request ({}), ignoring", wire::decodeErrorName(error));
        reply(connection, true, -EINVAL);
        drop(connection.id);
        return;
    }

    reply(connection, false, 0);
    const std::uint64_t id = connection.id;
    // Who asked, while they wait in request_module(); at most a moment's wait for the trace.
    requesters_.identify(name, [this, id, name](Requester requester) {
        LoadOptions options;
        options.requester = std::move(requester);
        loader_.load(
            name, Origin::Kernel,
            [this, id](Outcome outcome) {
                auto it = connections_.find(id);
                if (it == connections_.end())
                    return;
                reply(*it->second, true, outcome.error);
                drop(id);
            },
            std::move(options));
    });
}

void RequestServer::reply(Connection &connection, bool verdict, int status) {
    const std::vector<std::uint8_t> message =
        wire::encodeReply({verdict ? wire::ReplyKind::Verdict : wire::ReplyKind::Accepted, status});
    // The helper may be gone (its caller was killed): nothing left to tell.
    [[maybe_unused]] ssize_t n =
        send(connection.fd.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void RequestServer::drop(std::uint64_t id) {
    auto it = connections_.find(id);
    if (it == connections_.end())
        return;
    it->second->io.reset();
    it->second->silence.reset();
    connections_.erase(it);
}

int RequestServer::onListenReadable(sd_event_source *, int, uint32_t, void *userdata) {
    static_cast<RequestServer *>(userdata)->accept();
    return 0;
}

int RequestServer::onConnectionReadable(sd_event_source *, int, uint32_t, void *userdata) {
    auto *connection = static_cast<Connection *>(userdata);
    connection->server->receive(*connection);
    return 0;
}

int RequestServer::onSilence(sd_event_source *, uint64_t, void *userdata) {
    auto *connection = static_cast<Connection *>(userdata);
    logger("requests")->warn("A kernel request connection stayed silent, dropping it");
    connection->server->drop(connection->id);
    return 0;
}

}  // namespace lkmd
