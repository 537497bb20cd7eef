// SPDX-License-Identifier: LGPL-2.1-or-later
// The arguments of org.lkmd1.Manager's members, read before authorization: a message is built
// from the bytes (fields split at NUL: the name, then key and value of each option; a value's
// first byte picks its type) and read as LoadModuleEx would. A name read is a valid request name;
// options are accepted only as Autoclean, once, boolean.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include <systemd/sd-bus.h>

#include "bus_arguments.h"
#include "fuzz_input.h"
#include "request_name.h"

namespace {

// Messages need a bus that has started; it never has to finish its handshake.
sd_bus *bus() {
    static sd_bus *bus = [] {
        int fds[2];
        sd_bus *b = nullptr;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 || sd_bus_new(&b) < 0 ||
            sd_bus_set_fd(b, fds[0], fds[0]) < 0 || sd_bus_start(b) < 0)
            std::abort();
        return b;
    }();
    return bus;
}

int appendValue(sd_bus_message *m, const std::string &value) {
    const std::string rest = value.empty() ? std::string() : value.substr(1);
    switch (value.empty() ? 0 : static_cast<unsigned char>(value[0]) % 4) {
        case 0:
            return sd_bus_message_append(m, "v", "b", !rest.empty() && (rest[0] & 1));
        case 1:
            return sd_bus_message_append(m, "v", "s", rest.c_str());
        case 2:
            return sd_bus_message_append(m, "v", "u", static_cast<std::uint32_t>(rest.size()));
        default:
            return sd_bus_message_append(m, "v", "as", 1, rest.c_str());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size > 16 * 1024)
        return 0;
    std::vector<std::string> fields;
    std::string_view rest(reinterpret_cast<const char *>(data), size);
    for (;;) {
        const std::size_t nul = rest.find('\0');
        fields.emplace_back(rest.substr(0, nul));
        if (nul == std::string_view::npos)
            break;
        rest.remove_prefix(nul + 1);
    }

    sd_bus_message *m = nullptr;
    FUZZ_ASSERT(sd_bus_message_new_method_call(bus(), &m, "org.lkmd1", "/org/lkmd1",
                                               "org.lkmd1.Manager", "LoadModuleEx") >= 0);
    // Strings must be valid UTF-8 to be appended at all: sd-bus refuses the rest on receipt too.
    int r = sd_bus_message_append(m, "s", fields[0].c_str());
    if (r >= 0)
        r = sd_bus_message_open_container(m, 'a', "{sv}");
    std::size_t entries = 0;
    for (std::size_t i = 1; r >= 0 && i + 1 < fields.size(); i += 2, ++entries) {
        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
            r = sd_bus_message_append(m, "s", fields[i].c_str());
        if (r >= 0)
            r = appendValue(m, fields[i + 1]);
        if (r >= 0)
            r = sd_bus_message_close_container(m);
    }
    if (r >= 0)
        r = sd_bus_message_close_container(m);
    if (r >= 0)
        r = sd_bus_message_seal(m, 1, 0);
    if (r >= 0)
        r = sd_bus_message_rewind(m, true);
    if (r < 0) {
        sd_bus_message_unref(m);
        return 0;
    }

    std::string name;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    if (lkmd::readName(m, lkmd::NameKind::Request, &name, &error) >= 0) {
        FUZZ_ASSERT(lkmd::whyInvalidRequestName(name) == nullptr);
        FUZZ_ASSERT(name == fields[0]);
        lkmd::LoadOptions options;
        if (lkmd::readLoadOptions(m, &options, &error) >= 0) {
            FUZZ_ASSERT(!sd_bus_error_is_set(&error));
            FUZZ_ASSERT(entries <= 1);
            FUZZ_ASSERT(entries == 0 || fields[1] == "Autoclean");
        } else {
            FUZZ_ASSERT(entries >= 1);
        }
    } else {
        FUZZ_ASSERT(lkmd::whyInvalidRequestName(fields[0]) != nullptr);
    }
    sd_bus_error_free(&error);
    sd_bus_message_unref(m);
    return 0;
}
