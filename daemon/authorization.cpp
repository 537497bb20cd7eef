// SPDX-License-Identifier: LGPL-2.1-or-later
#include "authorization.h"

#include <linux/capability.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "bus_names.h"
#include "log.h"

namespace lkmd {
namespace {

constexpr const char *kPolkitService = "org.freedesktop.PolicyKit1";
constexpr const char *kPolkitPath = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char *kPolkitInterface = "org.freedesktop.PolicyKit1.Authority";

// CheckAuthorization's flags.
constexpr std::uint32_t kAllowUserInteraction = 1;

// polkit keys cancellation ids by the asking connection: a counter is unique enough.
std::string cancellationId(std::uint64_t id) {
    return "lkmd-" + std::to_string(id);
}

// The messages complete "permission denied: ..." (lkmctl) and do not name the method: the
// caller knows what it called.
std::string needs(const std::string &why) {
    return std::string("needs CAP_SYS_MODULE (root) or polkit's authorization for ") +
           kManageAction + "; " + why;
}

}  // namespace

Authorization::~Authorization() {
    // Unreferencing a pending call's slot cancels it without calling back; polkit is told too, so
    // that its checks do not outlive lkmd in dbus-daemon's count of awaited replies.
    for (const auto &[id, pending] : pending_)
        cancel(*pending);
}

void Authorization::check(sd_bus_message *call, std::map<std::string, std::string> details,
                          Verdict verdict) {
    const std::string method = sd_bus_message_get_member(call);
    if (sd_bus_query_sender_privilege(call, CAP_SYS_MODULE) > 0) {
        verdict(nullptr);
        return;
    }
    auto refuse = [&](const char *name, const std::string &why) {
        BusError error;
        sd_bus_error_setf(error.get(), name, "%s", why.c_str());
        verdict(error.get());
    };

    sd_bus_creds *rawCreds = nullptr;
    int r = sd_bus_query_sender_creds(call, SD_BUS_CREDS_EUID, &rawCreds);
    std::unique_ptr<sd_bus_creds, SdUnref<sd_bus_creds, sd_bus_creds_unref>> creds(rawCreds);
    uid_t uid = 0;
    if (r >= 0)
        r = sd_bus_creds_get_euid(creds.get(), &uid);
    if (r < 0) {
        refuse(SD_BUS_ERROR_ACCESS_DENIED,
               needs(std::string("could not tell who called: ") + std::strerror(-r)));
        return;
    }
    const auto held = perUser_.find(uid);
    const bool userFull = held != perUser_.end() && held->second >= kMaxPendingPerUser;
    if (userFull || pending_.size() >= kMaxPending) {
        logger("bus")->warn("Refused {} of uid {}: {} authorization checks pending {}", method, uid,
                            userFull ? held->second : pending_.size(),
                            userFull ? "for this user" : "in all");
        refuse(SD_BUS_ERROR_LIMITS_EXCEEDED,
               userFull ? "too many authorization checks of this user are pending; try again "
                          "once polkit has answered them"
                        : "too many authorization checks are pending; try again later");
        return;
    }
    const std::string sender = sd_bus_message_get_sender(call);
    Caller &caller = callers_[sender];
    if (!caller.watch) {
        // dbus-daemon handles lkmd's messages in order: polkit sees the check only after the
        // match is in place, and a caller already gone by then is one polkit cannot resolve.
        const std::string match =
            "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
            "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" +
            sender + "'";
        sd_bus_slot *watch = nullptr;
        r = sd_bus_add_match_async(bus_, &watch, match.c_str(), onNameOwnerChanged, nullptr, this);
        if (r < 0) {
            callers_.erase(sender);
            refuse(SD_BUS_ERROR_ACCESS_DENIED,
                   needs(std::string("could not ask polkit: ") + std::strerror(-r)));
            return;
        }
        caller.watch.reset(watch);
    }

    details["method"] = method;
    const bool interactive = sd_bus_message_get_allow_interactive_authorization(call) > 0;
    const std::uint64_t id = nextId_++;
    sd_bus_slot *slot = nullptr;
    auto pending = std::make_unique<Pending>();
    r = ask(call, details, interactive, id, &slot);
    if (r < 0) {
        if (caller.pending == 0)
            callers_.erase(sender);
        refuse(SD_BUS_ERROR_ACCESS_DENIED,
               needs(std::string("could not ask polkit: ") + std::strerror(-r)));
        return;
    }
    ++caller.pending;
    ++perUser_[uid];
    pending->self = this;
    pending->id = id;
    pending->sender = sender;
    pending->uid = uid;
    pending->method = method;
    pending->interactive = interactive;
    pending->verdict = std::move(verdict);
    pending->slot.reset(slot);
    sd_bus_slot_set_userdata(slot, pending.get());
    pending_.emplace(id, std::move(pending));
}

int Authorization::ask(sd_bus_message *call, const std::map<std::string, std::string> &details,
                       bool interactive, std::uint64_t id, sd_bus_slot **slot) {
    sd_bus_message *raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_, &raw, kPolkitService, kPolkitPath,
                                           kPolkitInterface, "CheckAuthorization");
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
                                  cancellationId(id).c_str());
    if (r < 0)
        return r;
    // The reply cannot come before the loop turns again: check() sets the slot's userdata.
    return sd_bus_call_async(bus_, slot, question.get(), onPolkitReply, nullptr,
                             interactive ? bus::kInteractiveAuthorizationUsec : 0);
}

void Authorization::cancel(const Pending &pending) {
    // No reply wanted: polkit answers the withdrawn check itself, with an error nobody awaits.
    const int r = sd_bus_call_method_async(bus_, nullptr, kPolkitService, kPolkitPath,
                                           kPolkitInterface, "CancelCheckAuthorization", nullptr,
                                           nullptr, "s", cancellationId(pending.id).c_str());
    if (r < 0)
        logger("bus")->debug("Could not withdraw the authorization check of {}: {}, ignoring",
                             pending.sender, std::strerror(-r));
}

Authorization::Verdict Authorization::release(std::uint64_t id) {
    auto it = pending_.find(id);
    std::unique_ptr<Pending> pending = std::move(it->second);
    pending_.erase(it);
    if (auto user = perUser_.find(pending->uid); user != perUser_.end() && --user->second == 0)
        perUser_.erase(user);
    if (auto caller = callers_.find(pending->sender);
        caller != callers_.end() && --caller->second.pending == 0)
        callers_.erase(caller);
    return std::move(pending->verdict);
}

int Authorization::onNameOwnerChanged(sd_bus_message *message, void *userdata, sd_bus_error *) {
    const char *name = nullptr;
    const char *oldOwner = nullptr;
    const char *newOwner = nullptr;
    if (sd_bus_message_read(message, "sss", &name, &oldOwner, &newOwner) < 0 ||
        newOwner == nullptr || newOwner[0] != '\0')
        return 0;
    static_cast<Authorization *>(userdata)->callerLeft(name);
    return 0;
}

// Nobody is left to answer: the checks are withdrawn, not decided.
void Authorization::callerLeft(const std::string &sender) {
    std::vector<std::uint64_t> gone;
    for (const auto &[id, pending] : pending_)
        if (pending->sender == sender)
            gone.push_back(id);
    for (std::uint64_t id : gone) {
        cancel(*pending_.at(id));
        release(id);
    }
    if (!gone.empty())
        logger("bus")->debug("{} left the bus; withdrew its {} authorization checks", sender,
                             gone.size());
}

int Authorization::onPolkitReply(sd_bus_message *reply, void *userdata, sd_bus_error *) {
    auto *pending = static_cast<Pending *>(userdata);
    Authorization *self = pending->self;

    BusError refusal;
    if (const sd_bus_error *error = sd_bus_message_get_error(reply)) {
        const bool absent = sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER);
        // sd-bus gave up waiting; polkit still holds the check until it is withdrawn.
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_NO_REPLY))
            self->cancel(*pending);
        const std::string why = absent ? std::string("polkit is not running")
                                       : std::string("polkit could not decide: ") + error->message;
        if (!absent)
            logger("bus")->warn("polkit could not decide {} for {}: {}", pending->method,
                                pending->sender, error->message);
        sd_bus_error_setf(refusal.get(), SD_BUS_ERROR_ACCESS_DENIED, "%s", needs(why).c_str());
        self->release(pending->id)(refusal.get());
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
        self->release(pending->id)(nullptr);
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
    self->release(pending->id)(refusal.get());
    return 0;
}

}  // namespace lkmd
