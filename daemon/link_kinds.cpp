// SPDX-License-Identifier: LGPL-2.1-or-later
#include "link_kinds.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "unique_fd.h"

namespace lkmd {
namespace {

void collectKind(const nlmsghdr *message, std::set<std::string> *kinds) {
    const auto *info = static_cast<const ifinfomsg *>(NLMSG_DATA(message));
    int length = static_cast<int>(message->nlmsg_len) - NLMSG_LENGTH(sizeof(*info));
    for (const rtattr *attribute = IFLA_RTA(info); RTA_OK(attribute, length);
         attribute = RTA_NEXT(attribute, length)) {
        if (attribute->rta_type != IFLA_LINKINFO)
            continue;
        int nestedLength = RTA_PAYLOAD(attribute);
        for (const rtattr *nested = static_cast<const rtattr *>(RTA_DATA(attribute));
             RTA_OK(nested, nestedLength); nested = RTA_NEXT(nested, nestedLength)) {
            if (nested->rta_type != IFLA_INFO_KIND || RTA_PAYLOAD(nested) == 0)
                continue;
            const char *kind = static_cast<const char *>(RTA_DATA(nested));
            kinds->insert(std::string(kind, strnlen(kind, RTA_PAYLOAD(nested))));
        }
    }
}

}  // namespace

int readLinkKinds(std::set<std::string> *kinds) {
    UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd.valid())
        return -errno;
    // The kernel answers a dump at once; a wedged netlink must not hold a worker forever.
    const timeval timeout{2, 0};
    if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) < 0)
        return -errno;
    struct {
        nlmsghdr header;
        ifinfomsg info;
    } request{};
    request.header.nlmsg_len = sizeof(request);
    request.header.nlmsg_type = RTM_GETLINK;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.nlmsg_seq = 1;
    request.info.ifi_family = AF_UNSPEC;
    if (send(fd.get(), &request, sizeof(request), 0) < 0)
        return -errno;

    std::vector<char> buffer(32768);
    for (;;) {
        const ssize_t n = recv(fd.get(), buffer.data(), buffer.size(), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        int length = static_cast<int>(n);
        for (const auto *message = reinterpret_cast<const nlmsghdr *>(buffer.data());
             NLMSG_OK(message, length); message = NLMSG_NEXT(message, length)) {
            if (message->nlmsg_type == NLMSG_DONE)
                return 0;
            if (message->nlmsg_type == NLMSG_ERROR) {
                const auto *error = static_cast<const nlmsgerr *>(NLMSG_DATA(message));
                return error->error != 0 ? error->error : -EIO;
            }
            if (message->nlmsg_type == RTM_NEWLINK)
                collectKind(message, kinds);
        }
    }
}

}  // namespace lkmd
