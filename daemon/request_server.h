// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <systemd/sd-event.h>

#include "loader.h"
#include "requester_matcher.h"
#include "sd_ptr.h"
#include "unique_fd.h"

namespace lkmd {

// The kernel-request channel: lkmd-modprobe connects once per request_module() call. Only root
// may talk to it (the kernel runs the helper as root); a peer that connects and stays silent, or
// sends garbage, costs one fd and is dropped, never blocking anyone else.
class RequestServer {
public:
    static constexpr std::uint64_t kSilenceTimeoutUsec = 5'000'000;
    static constexpr std::size_t kMaxConnections = 1024;

    // Adopts listenFd when >= 0 (socket activation); otherwise binds path itself.
    static std::unique_ptr<RequestServer> create(sd_event *event, Loader &loader,
                                                 RequesterMatcher &requesters,
                                                 const std::filesystem::path &path, int listenFd,
                                                 int *error);
    ~RequestServer();

    std::size_t connectionCount() const { return connections_.size(); }

private:
    struct Connection {
        RequestServer *server;
        std::uint64_t id;
        UniqueFd fd;
        EventSourcePtr io;
        EventSourcePtr silence;
    };

    RequestServer(sd_event *event, Loader &loader, RequesterMatcher &requesters);
    void accept();
    void receive(Connection &connection);
    void reply(Connection &connection, bool verdict, int status);
    void drop(std::uint64_t id);

    static int onListenReadable(sd_event_source *, int, uint32_t, void *userdata);
    static int onConnectionReadable(sd_event_source *, int, uint32_t, void *userdata);
    static int onSilence(sd_event_source *, uint64_t, void *userdata);

    sd_event *event_;
    Loader &loader_;
    RequesterMatcher &requesters_;
    UniqueFd listenFd_;
    EventSourcePtr listenSource_;
    std::filesystem::path ownedPath_;
    std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
    std::uint64_t nextId_ = 1;
};

}  // namespace lkmd
