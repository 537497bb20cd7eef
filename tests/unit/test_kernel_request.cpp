// SPDX-License-Identifier: LGPL-2.1-or-later
#include <random>

#include <gtest/gtest.h>

#include "kernel_request.h"

using namespace lkmd::wire;

namespace {

DecodeError decode(const std::vector<std::uint8_t> &bytes, std::string *name) {
    return decodeRequest(std::span<const std::uint8_t>(bytes), name);
}

}  // namespace

TEST(KernelRequestWire, RequestRoundTrips) {
    std::string name;
    EXPECT_EQ(decode(encodeRequest("fs-ntfs3"), &name), DecodeError::None);
    EXPECT_EQ(name, "fs-ntfs3");
}

TEST(KernelRequestWire, ReplyRoundTrips) {
    Reply reply;
    const auto bytes = encodeReply({ReplyKind::Verdict, -19});
    ASSERT_EQ(decodeReply(std::span<const std::uint8_t>(bytes), &reply), DecodeError::None);
    EXPECT_EQ(reply.kind, ReplyKind::Verdict);
    EXPECT_EQ(reply.status, -19);
}

TEST(KernelRequestWire, RefusesTruncatedRequests) {
    std::string name;
    auto bytes = encodeRequest("fs-vfat");
    for (std::size_t size = 0; size < bytes.size(); ++size) {
        std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + size);
        EXPECT_NE(decode(prefix, &name), DecodeError::None) << size;
    }
}

TEST(KernelRequestWire, RefusesOversizedRequests) {
    std::string name;
    std::vector<std::uint8_t> huge(kMaxRequestSize + 1, 'a');
    EXPECT_EQ(decode(huge, &name), DecodeError::TooLong);
    EXPECT_TRUE(encodeRequest(std::string(kMaxRequestName + 1, 'a')).empty());
    EXPECT_TRUE(encodeRequest("").empty());
}

TEST(KernelRequestWire, RefusesWrongMagicAndVersion) {
    std::string name;
    auto bytes = encodeRequest("fs-vfat");
    bytes[0] = 'X';
    EXPECT_EQ(decode(bytes, &name), DecodeError::BadMagic);
    bytes = encodeRequest("fs-vfat");
    bytes[4] = 2;
    EXPECT_EQ(decode(bytes, &name), DecodeError::BadVersion);
    bytes = encodeRequest("fs-vfat");
    bytes[5] = 1;
    EXPECT_EQ(decode(bytes, &name), DecodeError::BadVersion);
}

TEST(KernelRequestWire, RefusesMissingTerminatorAndEmbeddedNul) {
    std::string name;
    auto bytes = encodeRequest("fs-vfat");
    bytes.back() = 'x';
    EXPECT_EQ(decode(bytes, &name), DecodeError::MissingTerminator);
    bytes = encodeRequest("fs-vfat");
    bytes[9] = 0;
    EXPECT_EQ(decode(bytes, &name), DecodeError::EmbeddedNul);
}

TEST(KernelRequestWire, RefusesLengthThatDisagreesWithTheDatagram) {
    std::string name;
    auto bytes = encodeRequest("fs-vfat");
    bytes[6] = 3;
    EXPECT_EQ(decode(bytes, &name), DecodeError::BadLength);
    bytes.push_back(0);
    bytes[6] = 7;
    EXPECT_EQ(decode(bytes, &name), DecodeError::BadLength);
}

TEST(KernelRequestWire, RandomBytesNeverDecodeToGarbage) {
    std::mt19937 random(1234);
    std::string name;
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> bytes(random() % 300);
        for (auto &byte : bytes)
            byte = random() & 0xff;
        if (i % 2 == 0 && bytes.size() >= 8) {  // half of them with a valid header
            bytes[0] = 'L', bytes[1] = 'K', bytes[2] = 'R', bytes[3] = 'Q', bytes[4] = 1;
        }
        if (decode(bytes, &name) == DecodeError::None) {
            EXPECT_EQ(name.find('\0'), std::string::npos);
            EXPECT_EQ(encodeRequest(name), bytes);
        }
    }
}

TEST(KernelRequestWire, RefusesUnknownReplyKind) {
    Reply reply;
    auto bytes = encodeReply({ReplyKind::Accepted, 0});
    bytes[5] = 9;
    EXPECT_EQ(decodeReply(std::span<const std::uint8_t>(bytes), &reply), DecodeError::BadKind);
}
