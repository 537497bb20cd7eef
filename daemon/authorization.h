// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include <systemd/sd-bus.h>

#include "sd_ptr.h"

namespace lkmd {

inline constexpr const char *kManageAction = "org.lkmd1.manage";

// Who may change what is loaded: callers with CAP_SYS_MODULE (over dbus-daemon, which passes no
// capabilities, sd-bus compares uids: root), or callers polkit authorizes for org.lkmd1.manage.
// polkit is asked asynchronously: an authentication dialog can take minutes, and the loop keeps
// serving kernel requests meanwhile. Where polkit does not run, only the first rule applies.
//
// Every check polkit holds is a reply lkmd's connection awaits, and dbus-daemon allows each
// connection a fixed number of those (128 on the system bus) for as long as the callee keeps
// them. So the checks pending at once are capped per user and in all, below that number, and a
// check is withdrawn (CancelCheckAuthorization) as soon as its caller leaves the bus or lkmd
// stops waiting: polkit then answers it, which frees the reply in dbus-daemon too.
class Authorization {
public:
    // A user (callers share one count per uid: anyone can open more connections) keeps at most
    // this many checks pending; all users together kMaxPending.
    static constexpr std::size_t kMaxPendingPerUser = 8;
    static constexpr std::size_t kMaxPending = 64;

    // Called once per check, on the event loop: with nullptr when the caller may go on, else
    // with the error to answer the call with. Checks dropped because their caller left the bus,
    // or still pending when the Authorization goes (at exit), are never called.
    using Verdict = std::function<void(const sd_bus_error *refusal)>;

    explicit Authorization(sd_bus *bus) : bus_(bus) {}
    ~Authorization();
    Authorization(const Authorization &) = delete;
    Authorization &operator=(const Authorization &) = delete;

    // details go to polkit (rules can read them with action.lookup()); "method" is added.
    void check(sd_bus_message *call, std::map<std::string, std::string> details, Verdict verdict);

private:
    struct Pending {
        Authorization *self = nullptr;
        std::uint64_t id = 0;
        std::string sender;
        uid_t uid = 0;
        std::string method;
        bool interactive = false;
        Verdict verdict;
        BusSlotPtr slot;
    };
    // A connection with checks pending, watched so that its checks go when it does.
    struct Caller {
        std::size_t pending = 0;
        BusSlotPtr watch;
    };

    int ask(sd_bus_message *call, const std::map<std::string, std::string> &details,
            bool interactive, std::uint64_t id, sd_bus_slot **slot);
    static int onPolkitReply(sd_bus_message *reply, void *userdata, sd_bus_error *);
    static int onNameOwnerChanged(sd_bus_message *message, void *userdata, sd_bus_error *);
    void callerLeft(const std::string &sender);
    void cancel(const Pending &pending);
    // Forgets the check; returns its verdict, for the caller to call (it may start more checks).
    Verdict release(std::uint64_t id);

    sd_bus *bus_;
    std::uint64_t nextId_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Pending>> pending_;
    std::unordered_map<std::string, Caller> callers_;
    std::unordered_map<uid_t, std::size_t> perUser_;
};

}  // namespace lkmd
