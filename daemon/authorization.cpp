// SPDX-License-Identifier: LGPL-2.1-or-later
#include "authorization.h"

#include <linux/capability.h>

#include <cerrno>
#include <cstring>

#include "bus_names.h"
#include "log.h"

namespace lkmd {
namespace {

// CheckAuthorization's flags.
constexpr std::uint32_t kAllowUserInteraction = 1;

// The messages complete "permission denied: ..." (lkmctl) and do not name the method: the
// caller knows what it called.
std::string needs(const std::string &why) {
    return std::string("needs CAP_SYS_MODULE (root) or polkit's authorization for ") +
           kManageAction + "; " + why;
}

}  // namespace

Authorization::~Authorization() {
    // Unreferencing a pending call's slot cancels it without calling back.
    pending_.clear();
}

void Authorization::check(sd_bus_message *call, std::map<std::string, std::string> details,
                          Verdict verdict) {
    const std::string method = sd_bus_message_get_member(call);
    if (sd_bus_query_sender_privilege(call, CAP_SYS_MODULE) > 0) {
        verdict(nullptr);
        return;
    }
    details["method"] = method;
    const bool interactive = sd_bus_message_get_allow_interactive_authorization(call) > 0;

    auto refuseNow = [&](int r) {
        BusError error;
        sd_bus_error_setf(error.get(), SD_BUS_ERROR_ACCESS_DENIED, "%s",
                          needs(std::string("could not ask polkit: ") + std::strerror(-r)).c_str());
        verdict(error.get());
    };

    sd_bus_message *raw = nullptr;
    int r = sd_bus_message_new_method_call(
        bus_, &raw, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
        "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
    BusMessagePtr question(raw);
    // Subject: the calling connection; polkit resolves it to a process and its session.
    if (r >= 0)
        r = sd_bus_message_append(question.get(), "(sa{sv})s", "system-bus-name", 1, "name", "s",
                                  sd_bus_message_get_sender(call), kManageAction);
    if (r >= 0)
        r = sd_bus_message_open_container(question.get(), 'a', "{ss}");
    for (const auto &[key, value] : details)
        if (r >= 0)
            r = sd_bus_message_append(question.get(), "{ss}", key.c_str(), value.c_str());
    if (r >= 0)
        r = sd_bus_message_close_container(question.get());
    if (r >= 0)
        r = sd_bus_message_append(question.get(), "us", interactive ? kAllowUserInteraction : 0,
                                  "");
    if (r < 0) {
        refuseNow(r);
        return;
    }

    // The reply cannot come before the loop turns again: the entry is filled in after the call.
    auto pending = pending_.emplace(pending_.end());
    sd_bus_slot *slot = nullptr;
    r = sd_bus_call_async(bus_, &slot, question.get(), onPolkitReply, &*pending,
                          interactive ? bus::kInteractiveAuthorizationUsec : 0);
    if (r < 0) {
        pending_.erase(pending);
        refuseNow(r);
        return;
    }
    pending->self = this;
    pending->call.reset(sd_bus_message_ref(call));
    pending->method = method;
    pending->interactive = interactive;
    pending->verdict = std::move(verdict);
    pending->slot.reset(slot);
}

int Authorization::onPolkitReply(sd_bus_message *reply, void *userdata, sd_bus_error *) {
    auto *pending = static_cast<Pending *>(userdata);
    Authorization *self = pending->self;
    auto it = self->pending_.begin();
    while (&*it != pending)
        ++it;

    BusError refusal;
    if (const sd_bus_error *error = sd_bus_message_get_error(reply)) {
        const bool absent = sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER);
        const std::string why = absent ? std::string("polkit is not running")
                                       : std::string("polkit could not decide: ") + error->message;
        if (!absent)
            logger("bus")->warn("polkit could not decide {} for {}: {}", pending->method,
                                sd_bus_message_get_sender(pending->call.get()), error->message);
        sd_bus_error_setf(refusal.get(), SD_BUS_ERROR_ACCESS_DENIED, "%s", needs(why).c_str());
        self->finish(it, refusal.get());
        return 0;
    }

    int authorized = 0;
    int challenge = 0;
    int r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
    if (r >= 0)
        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
    if (r < 0) {
        sd_bus_error_setf(refusal.get(), SD_BUS_ERROR_ACCESS_DENIED, "%s",
                          needs("polkit's answer was malformed").c_str());
    } else if (authorized) {
        self->finish(it, nullptr);
        return 0;
    } else if (challenge) {
        sd_bus_error_setf(
            refusal.get(), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "%s",
            needs(pending->interactive ? "polkit wants authentication, and no agent answered"
                                       : "polkit wants authentication, and the call did not allow "
                                         "interactive authorization")
                .c_str());
    } else {
        sd_bus_error_setf(refusal.get(), SD_BUS_ERROR_ACCESS_DENIED, "%s",
                          needs("polkit did not authorize this caller").c_str());
    }
    self->finish(it, refusal.get());
    return 0;
}

void Authorization::finish(std::list<Pending>::iterator pending, const sd_bus_error *refusal) {
    // The verdict may start more checks; take it out of the list before calling it.
    Verdict verdict = std::move(pending->verdict);
    pending_.erase(pending);
    verdict(refusal);
}

}  // namespace lkmd
