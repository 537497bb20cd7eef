// SPDX-License-Identifier: LGPL-2.1-or-later
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bus_handles.h"
#include "bus_reader.h"

namespace lkmd::client {
namespace {

// Real sd-bus messages, built and sealed without a peer: sd-bus only needs a started connection
// to create a message, and a sealed message can be read back like a received one.
class BusMessage : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0);
        sd_bus *raw = nullptr;
        ASSERT_GE(sd_bus_new(&raw), 0);
        bus_.reset(raw);
        ASSERT_GE(sd_bus_set_fd(bus_.get(), fds_[0], fds_[0]), 0);
        ASSERT_GE(sd_bus_start(bus_.get()), 0);
    }

    void TearDown() override {
        // Hang up first: the close flushes, and a flush waits for a peer that never answers.
        if (fds_[1] >= 0)
            close(fds_[1]);
        bus_.reset();
    }

    MessagePtr newMessage() {
        sd_bus_message *raw = nullptr;
        EXPECT_GE(sd_bus_message_new_method_call(bus_.get(), &raw, "org.lkmd1", "/org/lkmd1",
                                                 "org.lkmd1.Manager", "Test"),
                  0);
        return MessagePtr(raw);
    }

    static void seal(sd_bus_message *message) {
        ASSERT_GE(sd_bus_message_seal(message, 1, 0), 0);
        ASSERT_GE(sd_bus_message_rewind(message, true), 0);
    }

private:
    int fds_[2] = {-1, -1};  // fds_[0] belongs to the bus once it is started
    BusPtr bus_;
};

TEST_F(BusMessage, ReadsEveryTypeOfTheModuleRecord) {
    MessagePtr message = newMessage();
    ASSERT_GE(sd_bus_message_append(message.get(), "a{sv}", 5, "Name", "s", "vfat", "RefCount", "i",
                                    -1, "Size", "t", UINT64_C(24576), "Holders", "as", 2, "a", "b",
                                    "Loaded", "b", 1),
              0);
    seal(message.get());

    PropertyMap properties;
    ASSERT_EQ(readPropertyMap(message.get(), properties), 1);
    EXPECT_EQ(properties.at("Name"), PropertyValue(std::string("vfat")));
    EXPECT_EQ(properties.at("RefCount"), PropertyValue(std::int64_t{-1}));
    EXPECT_EQ(properties.at("Size"), PropertyValue(std::uint64_t{24576}));
    EXPECT_EQ(properties.at("Holders"), PropertyValue(std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(properties.at("Loaded"), PropertyValue(true));
}

TEST_F(BusMessage, SkipsValuesOfTypesItDoesNotKnow) {
    MessagePtr message = newMessage();
    ASSERT_GE(sd_bus_message_append(message.get(), "a{sv}", 3, "Name", "s", "dummy", "Params",
                                    "a{ss}", 1, "debug", "1", "Pair", "(iu)", -3, 4u),
              0);
    seal(message.get());

    PropertyMap properties;
    ASSERT_EQ(readPropertyMap(message.get(), properties), 1);
    EXPECT_EQ(properties.size(), 1u);
    EXPECT_EQ(moduleInfoFromProperties(properties).name, "dummy");
}

TEST_F(BusMessage, ReadsAListOfRecordsInOrder) {
    MessagePtr message = newMessage();
    ASSERT_GE(sd_bus_message_append(message.get(), "aa{sv}", 3, 1, "Name", "s", "b", 0, 1, "Name",
                                    "s", "a"),
              0);
    seal(message.get());

    std::vector<ModuleInfo> modules;
    ASSERT_GE(readModuleList(message.get(), modules), 0);
    ASSERT_EQ(modules.size(), 3u);
    EXPECT_EQ(modules[0].name, "b");
    EXPECT_EQ(modules[1].name, "");
    EXPECT_EQ(modules[2].name, "a");
}

TEST_F(BusMessage, ReadsARequestListInOrder) {
    MessagePtr message = newMessage();
    ASSERT_GE(
        sd_bus_message_append(message.get(), "aa{sv}", 2, 3, "Request", "s", "fs-vfat", "Time", "t",
                              UINT64_C(1714564800000000), "Modules", "as", 2, "fat", "vfat", 2,
                              "Request", "s", "nope", "Result", "s", "not-found"),
        0);
    seal(message.get());

    std::vector<RequestInfo> requests;
    ASSERT_GE(readRequestList(message.get(), requests), 0);
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].request, "fs-vfat");
    EXPECT_EQ(requests[0].timeUsec, UINT64_C(1714564800000000));
    EXPECT_EQ(requests[0].modules, (std::vector<std::string>{"fat", "vfat"}));
    EXPECT_EQ(requests[1].request, "nope");
    EXPECT_EQ(requests[1].result, "not-found");
}

TEST_F(BusMessage, ReadsAStringArray) {
    MessagePtr message = newMessage();
    ASSERT_GE(sd_bus_message_append(message.get(), "as", 2, "fat", "vfat"), 0);
    seal(message.get());

    std::vector<std::string> strings;
    ASSERT_GE(readStringArray(message.get(), strings), 0);
    EXPECT_EQ(strings, (std::vector<std::string>{"fat", "vfat"}));
}

TEST_F(BusMessage, FailsOnAReplyOfTheWrongSignature) {
    MessagePtr message = newMessage();
    ASSERT_GE(sd_bus_message_append(message.get(), "s", "oops"), 0);
    seal(message.get());

    PropertyMap properties;
    EXPECT_LT(readPropertyMap(message.get(), properties), 0);
}

}  // namespace
}  // namespace lkmd::client
