// SPDX-License-Identifier: LGPL-2.1-or-later
#include "requester.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

namespace lkmd {
namespace {

std::optional<std::string> readSmallFile(const std::filesystem::path &path) {
    std::ifstream in(path);
    if (!in)
        return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string readLink(const std::filesystem::path &path) {
    std::error_code ec;
    const std::filesystem::path target = std::filesystem::read_symlink(path, ec);
    return ec ? std::string() : target.string();
}

template <typename Number>
bool parseNumber(std::string_view text, Number *value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// The first number after "Key:" in /proc/PID/status (the real id for Uid: and Gid:).
std::optional<std::int64_t> statusNumber(std::string_view status, std::string_view key) {
    std::size_t at = 0;
    while (at < status.size()) {
        const std::size_t end = status.find('\n', at);
        std::string_view line = status.substr(at, end - at);
        at = end == std::string_view::npos ? status.size() : end + 1;
        if (!line.starts_with(key))
            continue;
        line.remove_prefix(key.size());
        const std::size_t first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos)
            return std::nullopt;
        line.remove_prefix(first);
        std::int64_t value = 0;
        if (!parseNumber(line.substr(0, line.find_first_of(" \t")), &value))
            return std::nullopt;
        return value;
    }
    return std::nullopt;
}

// NSpid lists the pid in each pid namespace from procfs's down to the process's own.
Namespace pidNamespaceFromStatus(std::string_view status) {
    const std::size_t at = status.find("\nNSpid:");
    if (at == std::string_view::npos)
        return Namespace::Unknown;
    std::string_view line = status.substr(at + 7);
    line = line.substr(0, line.find('\n'));
    std::istringstream fields{std::string(line)};
    std::string field;
    int count = 0;
    while (fields >> field)
        ++count;
    return count == 0 ? Namespace::Unknown : count == 1 ? Namespace::Initial : Namespace::Other;
}

Namespace sameAsOurs(const std::filesystem::path &procfs, std::int32_t pid, const char *kind) {
    const std::string theirs = readLink(procfs / std::to_string(pid) / "ns" / kind);
    const std::string ours = readLink(procfs / "self" / "ns" / kind);
    if (theirs.empty() || ours.empty())
        return Namespace::Unknown;
    return theirs == ours ? Namespace::Initial : Namespace::Other;
}

// Readable by everyone, unlike ns/user: the initial user namespace maps all of uid space.
Namespace userNamespaceFromUidMap(const std::filesystem::path &procfs, std::int32_t pid) {
    const std::optional<std::string> map = readSmallFile(procfs / std::to_string(pid) / "uid_map");
    if (!map)
        return Namespace::Unknown;
    std::istringstream fields(*map);
    std::string inside;
    std::string outside;
    std::string count;
    fields >> inside >> outside >> count;
    std::string more;
    const bool whole =
        inside == "0" && outside == "0" && count == "4294967295" && !(fields >> more);
    return whole ? Namespace::Initial : Namespace::Other;
}

}  // namespace

const char *namespaceName(Namespace ns) {
    switch (ns) {
        case Namespace::Initial:
            return "initial";
        case Namespace::Other:
            return "other";
        case Namespace::Unknown:
            break;
    }
    return "unknown";
}

bool parseNamespace(std::string_view text, Namespace *ns) {
    for (Namespace candidate : {Namespace::Unknown, Namespace::Initial, Namespace::Other})
        if (text == namespaceName(candidate)) {
            *ns = candidate;
            return true;
        }
    return false;
}

Requester unknownRequester(std::string why) {
    Requester requester;
    requester.unknownBecause = std::move(why);
    return requester;
}

std::string Requester::describe() const {
    if (!known)
        return "unknown (" + unknownBecause + ")";
    std::string text = std::string(kernelThread ? "kernel thread " : "pid ") + std::to_string(pid) +
                       " '" + comm + "'";
    if (uid >= 0)
        text += " uid " + std::to_string(uid);
    if (!unit.empty())
        text += " (" + unit + ")";
    if (userns == Namespace::Other)
        text += " in a user namespace";
    if (!fromInitOf.empty())
        text += ", from the init of " + fromInitOf;
    if (!callSite.empty())
        text += ", called from " + callSite;
    return text;
}

std::string unitOfCgroup(std::string_view cgroup) {
    std::string unit;
    std::size_t at = 0;
    while (at < cgroup.size()) {
        const std::size_t end = cgroup.find('/', at);
        const std::string_view part = cgroup.substr(at, end - at);
        at = end == std::string_view::npos ? cgroup.size() : end + 1;
        if (part.ends_with(".service") || part.ends_with(".scope"))
            unit = std::string(part);
    }
    return unit;
}

Requester readRequester(const std::filesystem::path &procfs, std::int32_t pid,
                        std::optional<std::uint64_t> notAfterBoottimeUsec) {
    const std::filesystem::path dir = procfs / std::to_string(pid);
    const std::optional<std::string> stat = readSmallFile(dir / "stat");
    if (!stat)
        return unknownRequester("pid " + std::to_string(pid) + " exited before lkmd looked");
    // Field 22, counted after the comm in parentheses (which may hold anything, ')' too).
    const std::size_t close = stat->rfind(')');
    std::istringstream fields(close == std::string::npos ? std::string() : stat->substr(close + 2));
    std::string field;
    std::uint64_t startTicks = 0;
    std::uint64_t flags = 0;
    for (int i = 3; i <= 22 && fields >> field; ++i) {
        if (i == 9 && !parseNumber(std::string_view(field), &flags))
            flags = 0;
        if (i == 22 && !parseNumber(std::string_view(field), &startTicks))
            startTicks = 0;
    }
    const long ticksPerSecond = sysconf(_SC_CLK_TCK);
    if (notAfterBoottimeUsec && ticksPerSecond > 0 &&
        startTicks * 1'000'000 / static_cast<std::uint64_t>(ticksPerSecond) > *notAfterBoottimeUsec)
        return unknownRequester("pid " + std::to_string(pid) + " was reused before lkmd looked");

    Requester requester;
    requester.known = true;
    requester.pid = pid;
    constexpr std::uint64_t kKernelThreadFlag = 0x00200000;  // PF_KTHREAD
    requester.kernelThread = (flags & kKernelThreadFlag) != 0;
    if (std::optional<std::string> comm = readSmallFile(dir / "comm")) {
        if (!comm->empty() && comm->back() == '\n')
            comm->pop_back();
        requester.comm = std::move(*comm);
    }
    requester.exe = readLink(dir / "exe");
    if (std::optional<std::string> status = readSmallFile(dir / "status")) {
        requester.uid = statusNumber(*status, "Uid:").value_or(-1);
        requester.gid = statusNumber(*status, "Gid:").value_or(-1);
        requester.pidns = pidNamespaceFromStatus(*status);
    }
    if (std::optional<std::string> cgroups = readSmallFile(dir / "cgroup")) {
        std::istringstream lines(*cgroups);
        std::string line;
        while (std::getline(lines, line))
            if (line.starts_with("0::"))
                requester.cgroup = line.substr(3);
        requester.unit = unitOfCgroup(requester.cgroup);
    }
    requester.userns = sameAsOurs(procfs, pid, "user");
    if (requester.userns == Namespace::Unknown)
        requester.userns = userNamespaceFromUidMap(procfs, pid);
    requester.netns = sameAsOurs(procfs, pid, "net");
    return requester;
}

}  // namespace lkmd
