#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Authorization under load: pending polkit checks are capped, and withdrawn when callers leave.

polkit itself does not run on the private bus: its stand-in (polkit_stand_in.cpp) answers
CheckAuthorization as polkit would for the uids it is told, and never answers the checks of
"holding" uids, as polkit does while an authentication agent never answers. lkmd, dbus-daemon
and its limit of 128 pending replies per connection are the real ones. The systemd guest
(tests/vm/test_service.py) runs the real polkit.
"""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv, NOBODY, POLKIT_POLICY, build_dir  # noqa: E402

ENV = None
AUTHORIZED = 1  # daemon: polkit's stand-in authorizes this user
HOLDERS = [NOBODY] + list(range(2, 11))  # their checks stay pending until withdrawn
REFUSED = 13  # proxy: polkit's stand-in refuses it
PER_USER = 8  # Authorization::kMaxPendingPerUser
IN_ALL = 64  # Authorization::kMaxPending
LIMITS = 'org.freedesktop.DBus.Error.LimitsExceeded'


def stand_in():
    return os.path.join(build_dir(), 'tests', 'lkmd-test-polkit')


def setUpModule():
    global ENV
    ENV = BusEnv(extra_bus_config=POLKIT_POLICY)
    ENV.start(before_daemon=lambda env: env.start_service(
        [stand_in(), 'serve', ','.join(map(str, HOLDERS)), str(AUTHORIZED)],
        'org.freedesktop.PolicyKit1'))


def tearDownModule():
    if ENV is not None:
        if os.environ.get('LKMD_TEST_VERBOSE'):
            print(ENV.log(), file=sys.stderr)
        ENV.stop()


def counts():
    """(held, withdrawn, decided) from polkit's stand-in."""
    out = ENV.run(['busctl', '--system', 'call', 'org.freedesktop.PolicyKit1',
                   '/org/freedesktop/PolicyKit1/Authority', 'org.lkmd1.test.PolkitStandIn',
                   'Counts'])
    assert out.returncode == 0, out.stderr
    return tuple(int(x) for x in out.stdout.split()[1:])


class Caller:
    """A connection of `uid` with `count` calls of METHOD(NAME) open at once."""

    def __init__(self, uid, count, method='LoadModule', name='dummy'):
        self.proc = subprocess.Popen([stand_in(), 'call', str(count), method, name],
                                     env=ENV.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, preexec_fn=BusEnv.as_user(uid))
        self.answers = []
        line = self.proc.stdout.readline()
        assert line == 'sent %d\n' % count, line

    def expect_answers(self, n):
        """The next n answers (the test fails rather than hang: the call times out)."""
        for _ in range(n):
            line = self.proc.stdout.readline()
            assert line, 'the caller exited'
            self.answers.append(line.strip())
        return self.answers[-n:]

    def leave(self):
        self.proc.stdin.close()
        self.proc.wait(10)
        self.proc.stdout.close()


def wait_for(predicate, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError('timed out waiting for ' + what + '; counts ' + str(counts()))


class AuthorizationLimitsTest(unittest.TestCase):
    def setUp(self):
        self.callers = []
        self.held_before, self.withdrawn_before, _ = counts()
        self.assertEqual(self.held_before, 0)

    def tearDown(self):
        for caller in self.callers:
            if caller.proc.poll() is None:
                caller.leave()
        wait_for(lambda: counts()[0] == 0, 'every held check to be withdrawn')

    def hold(self, uid, count):
        caller = Caller(uid, count)
        self.callers.append(caller)
        return caller

    def served(self, uid, name):
        started = time.monotonic()
        out = ENV.call('LoadModule', 'string:' + name, uid=uid)
        elapsed = time.monotonic() - started
        self.assertEqual(out.returncode, 0, out.stderr + ENV.log()[-3000:])
        self.assertIn(name, ENV.proc_modules())
        ENV.call('UnloadModule', 'string:' + name)
        return elapsed

    def test_a_user_holding_its_maximum_of_pending_checks_leaves_root_and_others_served(self):
        # As many calls as dbus-daemon lets lkmd await replies from polkit: without a cap, lkmd
        # would forward them all, and every later check would be refused by dbus-daemon.
        flood = self.hold(NOBODY, 128)
        self.assertEqual(flood.expect_answers(128 - PER_USER), [LIMITS] * (128 - PER_USER))
        wait_for(lambda: counts()[0] == PER_USER, 'polkit to hold the user\'s checks')

        root = self.served(0, 'fat')
        other = self.served(AUTHORIZED, 'nls_cp437')
        print('with uid %d holding %d checks: root served in %.3f s, uid %d in %.3f s'
              % (NOBODY, PER_USER, root, AUTHORIZED, other), file=sys.stderr)
        self.assertIn('too many authorization checks of this user are pending',
                      ENV.call('LoadModule', 'string:dummy', uid=NOBODY).stderr)

    def test_all_users_together_hold_at_most_the_global_cap(self):
        for uid in HOLDERS[1:1 + IN_ALL // PER_USER]:
            self.hold(uid, PER_USER)
        wait_for(lambda: counts()[0] == IN_ALL, 'polkit to hold %d checks' % IN_ALL)
        out = ENV.call('LoadModule', 'string:dummy', uid=HOLDERS[-1])
        self.assertIn('Error ' + LIMITS, out.stderr)
        self.assertIn('too many authorization checks are pending', out.stderr)
        self.served(0, 'fat')

    def test_checks_of_a_caller_that_left_the_bus_are_withdrawn_from_polkit(self):
        caller = self.hold(NOBODY, PER_USER)
        wait_for(lambda: counts()[0] == PER_USER, 'polkit to hold the checks')
        caller.leave()
        wait_for(lambda: counts()[0] == 0, 'the checks to be withdrawn')
        self.assertEqual(counts()[1] - self.withdrawn_before, PER_USER)
        # The user's share is free again.
        self.hold(NOBODY, PER_USER)
        wait_for(lambda: counts()[0] == PER_USER, 'polkit to hold the new checks')

    def test_a_refused_user_is_told_so_and_an_authorized_one_is_let_in(self):
        self.served(AUTHORIZED, 'dummy')
        out = ENV.call('LoadModule', 'string:dummy', uid=REFUSED)
        self.assertIn('Error org.freedesktop.DBus.Error.AccessDenied', out.stderr)
        self.assertIn('polkit did not authorize this caller', out.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
