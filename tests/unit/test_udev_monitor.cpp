// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include "udev_monitor.h"

using namespace lkmd;

TEST(UdevMonitorDrain, StopsAtTheCapWhileEventsKeepComing) {
    std::size_t received = 0;
    const bool more = drainAtMost(64, [&] {
        ++received;
        return Received::Event;  // a flood: the socket never runs dry
    });
    EXPECT_TRUE(more);
    EXPECT_EQ(received, 64u);
}

TEST(UdevMonitorDrain, StopsWhenTheSocketIsDrained) {
    std::size_t received = 0;
    const bool more =
        drainAtMost(64, [&] { return ++received <= 3 ? Received::Event : Received::Drained; });
    EXPECT_FALSE(more);
    EXPECT_EQ(received, 4u);
}

TEST(UdevMonitorDrain, LostEventsCountAgainstTheCap) {
    std::size_t received = 0;
    EXPECT_TRUE(drainAtMost(8, [&] {
        ++received;
        return Received::Lost;
    }));
    EXPECT_EQ(received, 8u);
}
