// SPDX-License-Identifier: LGPL-2.1-or-later
#include <cerrno>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "bus_errors.h"

using namespace lkmd::bus;

TEST(BusErrors, EveryNameMapsToADistinctErrnoBothWays) {
    std::set<int> seen;
    for (const sd_bus_error_map *entry = kErrorMap; entry->name != nullptr; ++entry) {
        EXPECT_TRUE(seen.insert(entry->code).second) << entry->name;
        const ErrorInfo *byErrno = errorForErrno(-entry->code);
        ASSERT_NE(byErrno, nullptr) << entry->name;
        EXPECT_STREQ(byErrno->name, entry->name);
        EXPECT_EQ(errorForName(entry->name), byErrno);
    }
    EXPECT_EQ(seen.size(), 11u);
}

TEST(BusErrors, WouldBlockFromDeleteModuleMeansInUse) {
    EXPECT_STREQ(errorForErrno(-EAGAIN)->name, kErrorInUse);
}

TEST(BusErrors, UnknownErrnoHasNoName) {
    EXPECT_EQ(errorForErrno(-ENODEV), nullptr);
    EXPECT_EQ(errorForName("org.freedesktop.DBus.Error.AccessDenied"), nullptr);
}

TEST(BusErrors, SdBusTranslatesOurNamesToErrnos) {
    ASSERT_GE(sd_bus_error_add_map(kErrorMap), 0);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_error_set(&error, kErrorNotLoaded, "module is not loaded");
    EXPECT_EQ(sd_bus_error_get_errno(&error), ESRCH);
    sd_bus_error_free(&error);
}
