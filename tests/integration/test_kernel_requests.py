#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The kernel-request channel: the real lkmd-modprobe and lkmd on a simulated kernel."""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv  # noqa: E402

ENV = None
FALLBACK_DIR = None


def setUpModule():
    global ENV, FALLBACK_DIR
    ENV = BusEnv()
    ENV.dir  # config must exist before the daemon reads it
    os.makedirs(os.path.join(ENV.dir, 'etc', 'lkmd.conf.d'), exist_ok=True)
    with open(os.path.join(ENV.dir, 'etc', 'lkmd.conf'), 'w') as f:
        f.write('[Deny]\nRequests = fs-cramfs net-pf-33*\nModules = evil_blacklisted\n')
    with open(os.path.join(ENV.dir, 'etc', 'lkmd.conf.d', '50-broken.conf'), 'w') as f:
        f.write('[Deny]\nModules = dummy\nthis line is not valid\n')
    ENV.start()
    FALLBACK_DIR = tempfile.mkdtemp(prefix='lkmd-fallback-')


def tearDownModule():
    if ENV is not None:
        if os.environ.get('LKMD_TEST_VERBOSE'):
            print(ENV.log(), file=sys.stderr)
        ENV.stop()


def fake_modprobe(marker):
    """A stand-in for kmod's modprobe that records its argv, so fallbacks are observable."""
    path = os.path.join(FALLBACK_DIR, 'modprobe')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\necho "$@" >> %s\nexit 0\n' % marker)
    os.chmod(path, 0o755)
    return path


def helper(name, socket_path=None, marker=None, argv=None, timeout=30):
    """Runs lkmd-modprobe as the kernel does: fixed environment, fds 0-2 closed."""
    marker = marker or os.path.join(FALLBACK_DIR, 'calls')
    env = {'HOME': '/', 'TERM': 'linux', 'PATH': '/sbin:/usr/sbin:/bin:/usr/bin',
           'LKMD_REQUEST_SOCKET': socket_path or ENV.request_socket,
           'LKMD_KMOD_MODPROBE': fake_modprobe(marker)}
    closed = 'exec 0<&- 1>&- 2>&-; exec "$@"'
    argv = argv or ['-q', '--', name]
    started = time.monotonic()
    result = subprocess.run(['sh', '-c', closed, 'sh', ENV.helper_path(), *argv], env=env,
                            timeout=timeout)
    return result.returncode, time.monotonic() - started


def requests():
    rows = ENV.busctl_json('ListRequests')[0]
    return [{k: v['data'] for k, v in row.items()} for row in rows]


def raw_exchange(payload, wait=5):
    """Sends one datagram; returns the replies (kind, status) until the daemon closes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(wait)
    sock.connect(ENV.request_socket)
    sock.send(payload)
    replies = []
    try:
        while True:
            data = sock.recv(64)
            if not data:
                break
            magic, version, kind, _, status = struct.unpack('<4sBBHi', data)
            assert magic == b'LKRP' and version == 1, data
            replies.append((kind, status))
    finally:
        sock.close()
    return replies


def request_bytes(name, version=1, terminator=b'\0', length=None):
    raw = name.encode() if isinstance(name, str) else name
    return (b'LKRQ' + struct.pack('<BBH', version, 0, len(raw) if length is None else length) +
            raw + terminator)


class KernelRequestTest(unittest.TestCase):
    def test_helper_loads_through_lkmd_and_records_origin_kernel(self):
        rc, _ = helper('fs-vfat')
        self.assertEqual(rc, 0)
        modules = ENV.list_modules()
        self.assertEqual(modules['vfat']['Origin'], 'kernel')
        self.assertEqual(modules['vfat']['Trigger'], 'fs-vfat')
        self.assertEqual(modules['fat']['Trigger'], 'fs-vfat')
        last = [r for r in requests() if r['Request'] == 'fs-vfat'][-1]
        self.assertEqual(last['Origin'], 'kernel')
        self.assertIn(last['Result'], ('loaded', 'present'))

    def test_helper_exits_non_zero_for_unknown_names_quickly(self):
        for junk in ('netdev-d0', 'd0'):
            rc, _ = helper(junk)
            self.assertEqual(rc, 1, junk)
            record = [r for r in requests() if r['Request'] == junk][-1]
            self.assertEqual(record['Result'], 'not-found')
            self.assertLess(record['DurationUsec'], 50000)

    def test_helper_exits_non_zero_when_init_fails(self):
        self.assertEqual(helper('broken')[0], 1)

    def test_denied_request_fails_and_is_visible(self):
        rc, _ = helper('fs-cramfs')
        self.assertEqual(rc, 1)
        record = [r for r in requests() if r['Request'] == 'fs-cramfs'][-1]
        self.assertEqual(record['Result'], 'denied')
        self.assertIn('Requests=fs-cramfs', record['Message'])
        self.assertIn("Refused 'fs-cramfs' (kernel): denied by policy (Requests=fs-cramfs at ",
                      ENV.log())

    def test_denied_module_is_refused_even_by_its_own_name(self):
        self.assertEqual(helper('evil_blacklisted')[0], 1)
        self.assertNotIn('evil_blacklisted', ENV.proc_modules())

    def test_a_bad_line_costs_only_itself_and_is_reported_with_file_and_line(self):
        self.assertIn("50-broken.conf:3: expected Key=Value, got 'this line is not valid'",
                      ENV.log())
        self.assertEqual(helper('dummy')[0], 1)  # the Modules=dummy of the same file holds

    def test_concurrent_requests_are_served_by_one_load(self):
        procs = [subprocess.Popen(
            ['sh', '-c', 'exec "$@"', 'sh', ENV.helper_path(), '-q', '--', 'slow'],
            env={'LKMD_REQUEST_SOCKET': ENV.request_socket,
                 'LKMD_KMOD_MODPROBE': fake_modprobe(os.path.join(FALLBACK_DIR, 'c'))})
            for _ in range(60)]
        self.assertEqual([p.wait(60) for p in procs], [0] * 60)
        self.assertEqual(ENV.log().count("Inserted 'slow'"), 1)

    def test_daemon_absent_means_kmod_modprobe_with_the_same_argv(self):
        marker = os.path.join(FALLBACK_DIR, 'absent')
        rc, _ = helper('fs-vfat', socket_path='/nonexistent/lkmd.sock', marker=marker)
        self.assertEqual(rc, 0)
        with open(marker) as f:
            self.assertEqual(f.read(), '-q -- fs-vfat\n')

    def test_daemon_that_never_acknowledges_is_bypassed_after_the_deadline(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'stuck.sock')
            stuck = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            stuck.bind(path)
            stuck.listen(8)  # accepts into the backlog, never answers: like a SIGSTOPped lkmd
            marker = os.path.join(FALLBACK_DIR, 'stuck')
            rc, elapsed = helper('fs-vfat', socket_path=path, marker=marker)
            stuck.close()
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(elapsed, 1.9)
        with open(marker) as f:
            self.assertEqual(f.read(), '-q -- fs-vfat\n')

    # lkmd leaves its policy next to its socket for the helper, and kmod's modprobe.d for the
    # rest: while it does not answer, what it refuses stays refused.
    def test_while_lkmd_is_away_its_policy_holds_in_the_helper_and_in_kmod(self):
        policy = os.path.join(ENV.runtime_dir, 'fallback-policy')
        deadline = time.monotonic() + 10
        while not os.path.exists(policy):
            self.assertLess(time.monotonic(), deadline, 'lkmd wrote no fallback-policy')
            time.sleep(0.05)
        with open(os.path.join(ENV.dir, 'modprobe.d', 'lkmd.conf')) as f:
            self.assertIn("install evil_blacklisted /bin/sh -c 'echo \"evil_blacklisted is refused "
                          "by the policy of lkmd(8): lkmctl explain evil_blacklisted\" >&2; "
                          "exit 1'\n", f.read())
        with tempfile.TemporaryDirectory() as away:
            shutil.copy(policy, away)
            gone = os.path.join(away, 'kernel-request.sock')  # nobody listens
            for refused in ('evil_blacklisted', 'fs-cramfs', 'net-pf-33-proto-1'):
                marker = os.path.join(FALLBACK_DIR, 'away-' + refused)
                self.assertEqual(helper(refused, socket_path=gone, marker=marker)[0], 1, refused)
                self.assertFalse(os.path.exists(marker), refused + ' reached kmod')
            marker = os.path.join(FALLBACK_DIR, 'away-fs-vfat')
            self.assertEqual(helper('fs-vfat', socket_path=gone, marker=marker)[0], 0)
            with open(marker) as f:
                self.assertEqual(f.read(), '-q -- fs-vfat\n')
            with open(os.path.join(away, 'helper-fallbacks')) as f:
                self.assertEqual(f.read(), '1\n')

    def test_other_invocations_go_to_kmod(self):
        marker = os.path.join(FALLBACK_DIR, 'other')
        rc, _ = helper(None, argv=['-r', 'vfat'], marker=marker)
        self.assertEqual(rc, 0)
        with open(marker) as f:
            self.assertEqual(f.read(), '-r vfat\n')

    def test_invalid_names_fail_in_the_helper(self):
        for name in ('fs-a;reboot', 'fs-../x', 'a' * 56, ''):
            self.assertEqual(helper(name)[0], 1, name)

    def test_malformed_messages_get_an_error_and_the_daemon_keeps_serving(self):
        cases = {
            'truncated': request_bytes('fs-vfat')[:6],
            'oversized': request_bytes('x' * 400),
            'wrong version': request_bytes('fs-vfat', version=9),
            'missing terminator': request_bytes('fs-vfat', terminator=b'x'),
            'length mismatch': request_bytes('fs-vfat', length=3),
            'random bytes': bytes(random.Random(7).getrandbits(8) for _ in range(40)),
        }
        for what, payload in cases.items():
            with self.subTest(what):
                self.assertEqual(raw_exchange(payload), [(2, -22)])
        for name in ('fs-x;reboot', 'fs-../x', 'a' * 56):
            with self.subTest(name):
                self.assertEqual(raw_exchange(request_bytes(name)), [(1, 0), (2, -22)])
        self.assertIsNone(ENV.daemon.poll())
        self.assertEqual(raw_exchange(request_bytes('fs-vfat')), [(1, 0), (2, 0)])

    def test_a_silent_client_blocks_nobody(self):
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        silent.connect(ENV.request_socket)
        try:
            rc, elapsed = helper('nls_cp437')
            self.assertEqual(rc, 0)
            self.assertLess(elapsed, 5)
        finally:
            silent.close()

    def test_non_root_cannot_use_the_channel(self):
        probe = ('import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n'
                 'try:\n    s.connect(%r)\nexcept PermissionError:\n    print("refused")\n'
                 'else:\n    print("connected")\n' % ENV.request_socket)
        os.chmod(ENV.dir, 0o755)
        # The system interpreter: a per-user one (pyenv) may be unreadable to nobody.
        python = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable
        out = ENV.run([python, '-c', probe], unprivileged=True)
        self.assertEqual(out.stdout.strip(), 'refused', out.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
