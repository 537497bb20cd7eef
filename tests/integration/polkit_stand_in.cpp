// SPDX-License-Identifier: LGPL-2.1-or-later
// polkit's stand-in on the private test bus, and a caller that keeps calls open.
//
//   lkmd-test-polkit serve HOLD_UIDS ALLOW_UID
//       owns org.freedesktop.PolicyKit1: checks of callers with a uid in HOLD_UIDS
//       (comma-separated) are never answered (an authentication agent that never answers) until
//       withdrawn with CancelCheckAuthorization; ALLOW_UID is authorized, everyone else refused.
//       Counts() says (held, withdrawn, decided).
//   lkmd-test-polkit call N METHOD NAME
//       sends N calls of org.lkmd1.Manager.METHOD(NAME) at once on one connection, prints
//       "sent N", then one line per answer ("OK" or the error name), and exits when stdin closes.
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

namespace {

struct StandIn {
    std::set<uid_t> hold;
    uid_t allow = 0;
    std::map<std::pair<std::string, std::string>, sd_bus_message *> held;
    unsigned withdrawn = 0;
    unsigned decided = 0;
};

uid_t uidOf(sd_bus *bus, const char *name) {
    sd_bus_creds *creds = nullptr;
    uid_t uid = static_cast<uid_t>(-1);
    if (sd_bus_get_name_creds(bus, name, SD_BUS_CREDS_EUID, &creds) >= 0)
        sd_bus_creds_get_euid(creds, &uid);
    sd_bus_creds_unref(creds);
    return uid;
}

int onCheck(sd_bus_message *m, void *userdata, sd_bus_error *) {
    auto *self = static_cast<StandIn *>(userdata);
    const char *kind = nullptr;
    const char *subject = nullptr;
    const char *action = nullptr;
    const char *id = nullptr;
    unsigned flags = 0;
    int r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
    if (r >= 0)
        r = sd_bus_message_read(m, "s", &kind);
    if (r >= 0)
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
    while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        const char *key = nullptr;
        r = sd_bus_message_read(m, "s", &key);
        if (r >= 0 && std::strcmp(key, "name") == 0)
            r = sd_bus_message_read(m, "v", "s", &subject);
        else if (r >= 0)
            r = sd_bus_message_skip(m, "v");
        if (r >= 0)
            r = sd_bus_message_exit_container(m);
    }
    if (r >= 0)
        r = sd_bus_message_exit_container(m);
    if (r >= 0)
        r = sd_bus_message_exit_container(m);
    if (r >= 0)
        r = sd_bus_message_read(m, "s", &action);
    if (r >= 0)
        r = sd_bus_message_skip(m, "a{ss}");
    if (r >= 0)
        r = sd_bus_message_read(m, "us", &flags, &id);
    if (r < 0 || subject == nullptr)
        return r < 0 ? r : -EINVAL;
    const uid_t uid = uidOf(sd_bus_message_get_bus(m), subject);
    if (self->hold.count(uid) != 0) {
        self->held[{sd_bus_message_get_sender(m), id}] = sd_bus_message_ref(m);
        return 1;
    }
    ++self->decided;
    return sd_bus_reply_method_return(m, "(bba{ss})", uid == self->allow, 0, 0);
}

int onCancel(sd_bus_message *m, void *userdata, sd_bus_error *) {
    auto *self = static_cast<StandIn *>(userdata);
    const char *id = nullptr;
    const int r = sd_bus_message_read(m, "s", &id);
    if (r < 0)
        return r;
    auto it = self->held.find({sd_bus_message_get_sender(m), id});
    if (it != self->held.end()) {
        sd_bus_reply_method_errorf(it->second, "org.freedesktop.PolicyKit1.Error.Cancelled",
                                   "withdrawn");
        sd_bus_message_unref(it->second);
        self->held.erase(it);
        ++self->withdrawn;
    }
    return sd_bus_reply_method_return(m, nullptr);
}

int onCounts(sd_bus_message *m, void *userdata, sd_bus_error *) {
    auto *self = static_cast<StandIn *>(userdata);
    return sd_bus_reply_method_return(m, "uuu", static_cast<unsigned>(self->held.size()),
                                      self->withdrawn, self->decided);
}

const sd_bus_vtable kAuthority[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", onCheck,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("CancelCheckAuthorization", "s", "", onCancel, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};
const sd_bus_vtable kCounts[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Counts", "", "uuu", onCounts, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

int serve(const char *holdList, uid_t allow) {
    StandIn self;
    self.allow = allow;
    for (const char *p = holdList; *p != '\0';) {
        char *end = nullptr;
        self.hold.insert(static_cast<uid_t>(std::strtoul(p, &end, 10)));
        p = *end == ',' ? end + 1 : end;
    }
    sd_event *event = nullptr;
    sd_bus *bus = nullptr;
    int r = sd_event_default(&event);
    if (r >= 0)
        r = sd_bus_open_system(&bus);
    if (r >= 0)
        r = sd_bus_add_object_vtable(bus, nullptr, "/org/freedesktop/PolicyKit1/Authority",
                                     "org.freedesktop.PolicyKit1.Authority", kAuthority, &self);
    if (r >= 0)
        r = sd_bus_add_object_vtable(bus, nullptr, "/org/freedesktop/PolicyKit1/Authority",
                                     "org.lkmd1.test.PolkitStandIn", kCounts, &self);
    if (r >= 0)
        r = sd_bus_attach_event(bus, event, 0);
    if (r >= 0)
        r = sd_bus_request_name(bus, "org.freedesktop.PolicyKit1", 0);
    if (r >= 0)
        r = sd_event_set_signal_exit(event, true);
    if (r >= 0)
        r = sd_event_loop(event);
    if (r < 0)
        std::fprintf(stderr, "polkit stand-in: %s\n", std::strerror(-r));
    for (auto &entry : self.held)
        sd_bus_message_unref(entry.second);
    sd_bus_flush_close_unref(bus);
    sd_event_unref(event);
    return r < 0 ? 1 : 0;
}

int onAnswer(sd_bus_message *reply, void *, sd_bus_error *) {
    const sd_bus_error *error = sd_bus_message_get_error(reply);
    std::printf("%s\n", error != nullptr ? error->name : "OK");
    std::fflush(stdout);
    return 0;
}

int onStdin(sd_event_source *source, int, uint32_t, void *) {
    char buffer[64];
    if (read(0, buffer, sizeof(buffer)) <= 0)
        return sd_event_exit(sd_event_source_get_event(source), 0);
    return 0;
}

int call(int count, const char *method, const char *name) {
    sd_event *event = nullptr;
    sd_bus *bus = nullptr;
    int r = sd_event_default(&event);
    if (r >= 0)
        r = sd_bus_open_system(&bus);
    if (r >= 0)
        r = sd_bus_attach_event(bus, event, 0);
    for (int i = 0; r >= 0 && i < count; ++i)
        r = sd_bus_call_method_async(bus, nullptr, "org.lkmd1", "/org/lkmd1", "org.lkmd1.Manager",
                                     method, onAnswer, nullptr, "s", name);
    if (r >= 0)
        r = sd_bus_flush(bus);
    if (r >= 0) {
        std::printf("sent %d\n", count);
        std::fflush(stdout);
        r = sd_event_add_io(event, nullptr, 0, EPOLLIN, onStdin, nullptr);
    }
    if (r >= 0)
        r = sd_event_loop(event);
    if (r < 0)
        std::fprintf(stderr, "call: %s\n", std::strerror(-r));
    sd_bus_flush_close_unref(bus);
    sd_event_unref(event);
    return r < 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc == 4 && std::strcmp(argv[1], "serve") == 0)
        return serve(argv[2], std::atoi(argv[3]));
    if (argc == 5 && std::strcmp(argv[1], "call") == 0)
        return call(std::atoi(argv[2]), argv[3], argv[4]);
    std::fprintf(stderr, "usage: %s serve HOLD_UIDS ALLOW_UID | call N METHOD NAME\n", argv[0]);
    return 2;
}
