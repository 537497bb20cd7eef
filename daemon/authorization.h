// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <functional>
#include <list>
#include <map>
#include <string>

#include <systemd/sd-bus.h>

#include "sd_ptr.h"

namespace lkmd {

inline constexpr const char *kManageAction = "org.lkmd1.manage";

// Who may change what is loaded: callers with CAP_SYS_MODULE (over dbus-daemon, which passes no
// capabilities, sd-bus compares uids: root), or callers polkit authorizes for org.lkmd1.manage.
// polkit is asked asynchronously: an authentication dialog can take minutes, and the loop keeps
// serving kernel requests meanwhile. Where polkit does not run, only the first rule applies.
class Authorization {
public:
    // Called once per check, on the event loop: with nullptr when the caller may go on, else
    // with the error to answer the call with. Checks still pending when the Authorization goes
    // (at exit) are dropped uncalled: their callers see the connection close.
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
        BusMessagePtr call;
        std::string method;
        bool interactive = false;
        Verdict verdict;
        BusSlotPtr slot;
    };
    static int onPolkitReply(sd_bus_message *reply, void *userdata, sd_bus_error *);
    void finish(std::list<Pending>::iterator pending, const sd_bus_error *refusal);

    sd_bus *bus_;
    std::list<Pending> pending_;
};

}  // namespace lkmd
