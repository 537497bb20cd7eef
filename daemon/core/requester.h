// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace lkmd {

// Whether a process shares the initial namespace of a kind (the host's), runs in another one
// (a container, `unshare`), or lkmd could not tell.
enum class Namespace { Unknown, Initial, Other };

const char *namespaceName(Namespace ns);  // "initial", "other", "unknown"
bool parseNamespace(std::string_view text, Namespace *ns);

// Who caused a load: the process that called request_module() (from the kernel's
// module:module_request trace record and its /proc entry), or the caller of a bus method (from
// sd-bus credentials). Everything is as the process was when lkmd looked, while it waited.
struct Requester {
    bool known = false;
    std::string unknownBecause;  // when !known: "tracefs unavailable: not mounted", ...
    std::int32_t pid = 0;
    bool kernelThread = false;  // a kworker or kthread, not a process of userspace
    std::string comm;
    std::string exe;
    std::int64_t uid = -1;  // as seen from the initial user namespace
    std::int64_t gid = -1;
    std::string cgroup;  // the cgroup v2 path
    std::string unit;    // the systemd unit or scope it runs in, from the cgroup
    Namespace userns = Namespace::Unknown;
    Namespace pidns = Namespace::Unknown;
    Namespace netns = Namespace::Unknown;
    std::string callSite;  // the kernel function that asked, e.g. "get_fs_type"
    // The module whose init made the request (lkmd's own insertion asked), if any.
    std::string fromInitOf;

    // "pid 812 'mount' uid 0 (session-3.scope), called from get_fs_type"
    std::string describe() const;
};

Requester unknownRequester(std::string why);

// The systemd unit a cgroup path belongs to: its last component that names a service or scope
// ("/user.slice/user-1000.slice/session-3.scope" is session-3.scope). Empty when there is none.
std::string unitOfCgroup(std::string_view cgroup);

// Reads /proc/PID as the requester is now. notAfterBoottimeUsec: when the trace record was made
// (CLOCK_BOOTTIME); a process that started later has the pid by reuse and is not the requester.
// Fields lkmd may not read (another user's exe without CAP_SYS_PTRACE) stay empty or Unknown.
Requester readRequester(const std::filesystem::path &procfs, std::int32_t pid,
                        std::optional<std::uint64_t> notAfterBoottimeUsec);

}  // namespace lkmd
