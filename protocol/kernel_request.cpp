// SPDX-License-Identifier: LGPL-2.1-or-later
#include "kernel_request.h"

#include <algorithm>
#include <cstring>

namespace lkmd::wire {
namespace {

constexpr std::uint8_t kRequestMagic[4] = {'L', 'K', 'R', 'Q'};
constexpr std::uint8_t kReplyMagic[4] = {'L', 'K', 'R', 'P'};

void putU16(std::uint8_t *out, std::uint16_t value) {
    out[0] = value & 0xff;
    out[1] = value >> 8;
}

std::uint16_t getU16(const std::uint8_t *in) {
    return static_cast<std::uint16_t>(in[0] | (in[1] << 8));
}

void putI32(std::uint8_t *out, std::int32_t value) {
    const auto bits = static_cast<std::uint32_t>(value);
    for (int i = 0; i < 4; ++i)
        out[i] = (bits >> (8 * i)) & 0xff;
}

std::int32_t getI32(const std::uint8_t *in) {
    std::uint32_t bits = 0;
    for (int i = 0; i < 4; ++i)
        bits |= static_cast<std::uint32_t>(in[i]) << (8 * i);
    return static_cast<std::int32_t>(bits);
}

}  // namespace

const char *decodeErrorName(DecodeError error) {
    switch (error) {
        case DecodeError::None:
            return "no error";
        case DecodeError::Truncated:
            return "truncated message";
        case DecodeError::TooLong:
            return "oversized message";
        case DecodeError::BadMagic:
            return "not an lkmd message";
        case DecodeError::BadVersion:
            return "unsupported protocol version";
        case DecodeError::BadLength:
            return "length field does not match the message";
        case DecodeError::MissingTerminator:
            return "name is not NUL-terminated";
        case DecodeError::EmbeddedNul:
            return "name contains a NUL byte";
        case DecodeError::BadKind:
            return "unknown reply kind";
    }
    return "unknown error";
}

std::vector<std::uint8_t> encodeRequest(std::string_view name) {
    if (name.empty() || name.size() > kMaxRequestName)
        return {};
    std::vector<std::uint8_t> out(kRequestHeaderSize + name.size() + 1, 0);
    std::memcpy(out.data(), kRequestMagic, 4);
    out[4] = kVersion;
    putU16(&out[6], static_cast<std::uint16_t>(name.size()));
    std::memcpy(&out[kRequestHeaderSize], name.data(), name.size());
    return out;
}

DecodeError decodeRequest(std::span<const std::uint8_t> datagram, std::string *name) {
    if (datagram.size() > kMaxRequestSize)
        return DecodeError::TooLong;
    if (datagram.size() < kRequestHeaderSize + 2)
        return DecodeError::Truncated;
    if (std::memcmp(datagram.data(), kRequestMagic, 4) != 0)
        return DecodeError::BadMagic;
    if (datagram[4] != kVersion)
        return DecodeError::BadVersion;
    if (datagram[5] != 0)  // reserved: a future version's flags must not be misread by this one
        return DecodeError::BadVersion;
    const std::size_t length = getU16(&datagram[6]);
    if (length == 0 || kRequestHeaderSize + length + 1 != datagram.size())
        return DecodeError::BadLength;
    const auto text = datagram.subspan(kRequestHeaderSize, length);
    if (datagram.back() != 0)
        return DecodeError::MissingTerminator;
    if (std::find(text.begin(), text.end(), 0) != text.end())
        return DecodeError::EmbeddedNul;
    name->assign(text.begin(), text.end());
    return DecodeError::None;
}

std::vector<std::uint8_t> encodeReply(const Reply &reply) {
    std::vector<std::uint8_t> out(kReplySize, 0);
    std::memcpy(out.data(), kReplyMagic, 4);
    out[4] = kVersion;
    out[5] = static_cast<std::uint8_t>(reply.kind);
    putI32(&out[8], reply.status);
    return out;
}

DecodeError decodeReply(std::span<const std::uint8_t> datagram, Reply *reply) {
    if (datagram.size() < kReplySize)
        return DecodeError::Truncated;
    if (datagram.size() > kReplySize)
        return DecodeError::TooLong;
    if (std::memcmp(datagram.data(), kReplyMagic, 4) != 0)
        return DecodeError::BadMagic;
    if (datagram[4] != kVersion)
        return DecodeError::BadVersion;
    if (datagram[6] != 0 || datagram[7] != 0)
        return DecodeError::BadVersion;
    if (datagram[5] != static_cast<std::uint8_t>(ReplyKind::Accepted) &&
        datagram[5] != static_cast<std::uint8_t>(ReplyKind::Verdict))
        return DecodeError::BadKind;
    reply->kind = static_cast<ReplyKind>(datagram[5]);
    reply->status = getI32(&datagram[8]);
    return DecodeError::None;
}

}  // namespace lkmd::wire
