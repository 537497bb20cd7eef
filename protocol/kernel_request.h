// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lkmd::wire {

// The kernel-request channel between lkmd-modprobe and lkmd: one SOCK_SEQPACKET connection per
// request. The helper sends one Request; the daemon answers Accepted at once (so the helper knows
// someone is working on it) and a Verdict when the module is live or the load failed.
//
//   request:  "LKRQ" u8 version u8 reserved(0) u16le length N, N name bytes, one NUL
//   reply:    "LKRP" u8 version u8 kind(1 accepted, 2 verdict) u16le reserved(0), i32le status
//
// Every message fits one datagram; anything that does not decode exactly is refused.

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kRequestHeaderSize = 8;
inline constexpr std::size_t kMaxRequestName = 255;  // the daemon validates the name itself
inline constexpr std::size_t kMaxRequestSize = kRequestHeaderSize + kMaxRequestName + 1;
inline constexpr std::size_t kReplySize = 12;

enum class ReplyKind : std::uint8_t { Accepted = 1, Verdict = 2 };

struct Reply {
    ReplyKind kind = ReplyKind::Verdict;
    std::int32_t status = 0;  // 0 or a negative errno
};

enum class DecodeError {
    None,
    Truncated,
    TooLong,
    BadMagic,
    BadVersion,
    BadLength,
    MissingTerminator,
    EmbeddedNul,
    BadKind,
};

const char *decodeErrorName(DecodeError error);

// Empty vector if name is empty or longer than kMaxRequestName.
std::vector<std::uint8_t> encodeRequest(std::string_view name);
DecodeError decodeRequest(std::span<const std::uint8_t> datagram, std::string *name);

std::vector<std::uint8_t> encodeReply(const Reply &reply);
DecodeError decodeReply(std::span<const std::uint8_t> datagram, Reply *reply);

}  // namespace lkmd::wire
