// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <stdlib.h>
#include <time.h>

#include <string>

#include <gtest/gtest.h>

// Pins the local time zone to UTC for one test, so that "local time" output is predictable.
class TimeZonePinnedToUtc : public ::testing::Test {
protected:
    void SetUp() override {
        const char *tz = getenv("TZ");
        hadTz_ = tz != nullptr;
        if (hadTz_)
            savedTz_ = tz;
        setenv("TZ", "UTC", 1);
        tzset();
    }

    void TearDown() override {
        if (hadTz_)
            setenv("TZ", savedTz_.c_str(), 1);
        else
            unsetenv("TZ");
        tzset();
    }

private:
    bool hadTz_ = false;
    std::string savedTz_;
};
