// SPDX-License-Identifier: LGPL-2.1-or-later
#include <signal.h>

#include <cerrno>
#include <cstdlib>

#include <gtest/gtest.h>

#include "install_command.h"

using namespace lkmd;

namespace {

// The loop thread blocks the signals sd-event handles; the worker that runs an install command
// inherits that mask, as libkmod's system() would pass it on.
class InstallCommandTest : public ::testing::Test {
protected:
    void SetUp() override {
        sigset_t blocked;
        sigemptyset(&blocked);
        sigaddset(&blocked, SIGTERM);
        sigaddset(&blocked, SIGINT);
        sigaddset(&blocked, SIGHUP);
        ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &blocked, &saved_), 0);
    }
    void TearDown() override { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

    sigset_t saved_{};
};

}  // namespace

// bash keeps the signal mask it was started with (dash clears it, so under /bin/sh the mask that
// libkmod's system() would pass on hides); grep inherits bash's.
TEST_F(InstallCommandTest, RunsWithNoSignalBlocked) {
    EXPECT_EQ(runInstallCommand("snd_x", "grep -q '^SigBlk:[[:space:]]*0*$' /proc/self/status", "",
                                "/bin/bash"),
              0);
}

TEST_F(InstallCommandTest, RunsWithTheModuleInItsEnvironment) {
    EXPECT_EQ(runInstallCommand("snd_x", "test \"$MODPROBE_MODULE\" = snd_x", ""), 0);
}

TEST_F(InstallCommandTest, LeavesTheDaemonsEnvironmentAlone) {
    ASSERT_EQ(unsetenv("MODPROBE_MODULE"), 0);
    EXPECT_EQ(runInstallCommand("snd_x", "true", ""), 0);
    EXPECT_EQ(std::getenv("MODPROBE_MODULE"), nullptr);
}

TEST_F(InstallCommandTest, ReplacesEveryCmdlineOptsWithTheOptions) {
    EXPECT_EQ(
        runInstallCommand("m", "test '$CMDLINE_OPTS/$CMDLINE_OPTS' = 'a=1 b=2/a=1 b=2'", "a=1 b=2"),
        0);
}

TEST_F(InstallCommandTest, AFailingCommandIsNotPermitted) {
    EXPECT_EQ(runInstallCommand("m", "exit 3", ""), -EPERM);
}
