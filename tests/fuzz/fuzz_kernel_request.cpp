// SPDX-License-Identifier: LGPL-2.1-or-later
// The kernel-request wire format: what lkmd-modprobe sends and the daemon reads from a socket any
// root process can write to. Decoding never reads past the datagram, and what decodes encodes
// back to the same bytes.
#include <cstdint>
#include <span>
#include <string>

#include "fuzz_input.h"
#include "kernel_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace lkmd::wire;
    const std::span<const std::uint8_t> datagram(data, size);
    std::string name;
    if (decodeRequest(datagram, &name) == DecodeError::None) {
        FUZZ_ASSERT(!name.empty() && name.size() <= kMaxRequestName);
        const std::vector<std::uint8_t> again = encodeRequest(name);
        FUZZ_ASSERT(std::vector<std::uint8_t>(data, data + size) == again);
    }
    Reply reply;
    if (decodeReply(datagram, &reply) == DecodeError::None) {
        const std::vector<std::uint8_t> again = encodeReply(reply);
        FUZZ_ASSERT(std::vector<std::uint8_t>(data, data + size) == again);
    }
    return 0;
}
