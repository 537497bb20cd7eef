// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>

#include <gtest/gtest.h>

#include "core_world.h"
#include "request_limiter.h"

using namespace lkmd;

namespace {

constexpr std::uint64_t kSecond = 1'000'000;

RequestLimiter limiterOf(std::uint32_t burst, std::uint64_t intervalUsec) {
    RequestLimiter limiter;
    limiter.setLimit({burst, intervalUsec});
    return limiter;
}

// Charges until the bucket refuses; returns how many charges it took.
int drain(RequestLimiter &limiter, std::int64_t uid, std::uint64_t now) {
    int charges = 0;
    while (limiter.allows(uid, now) && charges < 1000) {
        limiter.charge(uid, now);
        ++charges;
    }
    return charges;
}

}  // namespace

TEST(RequestLimiter, AllowsABurstThenRefuses) {
    RequestLimiter limiter = limiterOf(5, 10 * kSecond);
    EXPECT_EQ(drain(limiter, 1000, kSecond), 5);
    EXPECT_FALSE(limiter.allows(1000, kSecond));
}

TEST(RequestLimiter, TokensComeBackOverTheInterval) {
    RequestLimiter limiter = limiterOf(10, 10 * kSecond);
    drain(limiter, 1000, kSecond);
    // One token a second.
    EXPECT_FALSE(limiter.allows(1000, kSecond + kSecond / 2));
    EXPECT_TRUE(limiter.allows(1000, 2 * kSecond));
    EXPECT_EQ(drain(limiter, 1000, 2 * kSecond), 1);
    // Never more than the burst, however long the pause.
    EXPECT_EQ(drain(limiter, 1000, 1000 * kSecond), 10);
}

TEST(RequestLimiter, OneUidDoesNotCostAnother) {
    RequestLimiter limiter = limiterOf(3, 10 * kSecond);
    drain(limiter, 1000, kSecond);
    EXPECT_FALSE(limiter.allows(1000, kSecond));
    EXPECT_TRUE(limiter.allows(1001, kSecond));
    EXPECT_EQ(drain(limiter, 1001, kSecond), 3);
}

TEST(RequestLimiter, RootAndUnknownRequestersAreNeverLimited) {
    RequestLimiter limiter = limiterOf(1, 10 * kSecond);
    for (int i = 0; i < 100; ++i) {
        EXPECT_FALSE(limiter.charge(0, kSecond));
        EXPECT_FALSE(limiter.charge(-1, kSecond));
    }
    EXPECT_TRUE(limiter.allows(0, kSecond));
    EXPECT_TRUE(limiter.allows(-1, kSecond));
    EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(RequestLimiter, ReportsRunningDryOncePerInterval) {
    RequestLimiter limiter = limiterOf(2, 10 * kSecond);
    EXPECT_FALSE(limiter.charge(1000, kSecond));
    EXPECT_TRUE(limiter.charge(1000, kSecond));  // dry now
    EXPECT_FALSE(limiter.charge(1000, kSecond));
    EXPECT_FALSE(limiter.charge(1000, 5 * kSecond));
    // Full again much later: running dry again is news.
    EXPECT_FALSE(limiter.charge(1000, 30 * kSecond));
    EXPECT_TRUE(limiter.charge(1000, 30 * kSecond));
}

TEST(RequestLimiter, TracksABoundedNumberOfUids) {
    RequestLimiter limiter = limiterOf(2, 10 * kSecond);
    for (std::int64_t uid = 1; uid <= 3 * static_cast<std::int64_t>(RequestLimiter::kMaxTracked);
         ++uid) {
        limiter.charge(uid, kSecond);
        limiter.charge(uid, kSecond);
    }
    EXPECT_LE(limiter.tracked(), RequestLimiter::kMaxTracked);
    // The newest flooder is still held back.
    EXPECT_FALSE(limiter.allows(3 * RequestLimiter::kMaxTracked, kSecond));
}

namespace {

class LimitedLoaderTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(
            world_.start("module fat\n"
                         "module vfat deps=fat aliases=fs-vfat\n"));
        world_.loader->setRequestLimit({3, 10 * kSecond});
    }

    LoadOptions from(std::int64_t uid) {
        LoadOptions options;
        options.requester.known = true;
        options.requester.uid = uid;
        options.requester.pid = 4242;
        options.requester.comm = "spray";
        return options;
    }

    CoreWorld world_;
};

}  // namespace

// The flood of a user spraying socket() over address families: after the burst, requests are
// answered without a lookup, counted but not listed, and never stop another user's request.
TEST_F(LimitedLoaderTest, AFloodOfUnservableRequestsIsAnsweredWithoutALookup) {
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(world_.load("net-pf-" + std::to_string(40 + i), Origin::Kernel, from(1000)).error,
                  -ENOENT);
    const std::size_t listed = world_.requests.records().size();
    const Outcome limited = world_.load("net-pf-99", Origin::Kernel, from(1000));
    EXPECT_EQ(limited.error, -EAGAIN);
    EXPECT_NE(limited.message.find("uid 1000"), std::string::npos) << limited.message;
    EXPECT_EQ(world_.runner->pending(), 0u);
    EXPECT_EQ(world_.requests.records().size(), listed);

    const Outcome other = world_.load("fs-vfat", Origin::Kernel, from(1001));
    EXPECT_EQ(other.error, 0) << other.message;
    EXPECT_EQ(world_.kernel->state("vfat"), ModuleState::Live);
}

TEST_F(LimitedLoaderTest, RequestsThatLoadCostNothing) {
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(world_.load("fs-vfat", Origin::Kernel, from(1000)).error, 0);
    }
    EXPECT_EQ(world_.load("fs-nope", Origin::Kernel, from(1000)).error, -ENOENT);
}

TEST_F(LimitedLoaderTest, RootIsNotLimited) {
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(world_.load("fs-nope", Origin::Kernel, from(0)).error, -ENOENT);
}

TEST_F(LimitedLoaderTest, HotplugIsNotChargedToAUser) {
    LoadOptions device = from(1000);
    device.device = "/devices/pci0000:00/0000:00:03.0";
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(world_.load("pci:v0000DEADd00001234", Origin::Hotplug, device).error, -ENOENT);
    EXPECT_EQ(world_.load("fs-nope", Origin::Kernel, from(1000)).error, -ENOENT);
}
