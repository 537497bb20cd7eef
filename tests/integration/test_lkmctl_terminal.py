#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""lkmctl on a terminal of 80 columns, as a person runs it: lkmd holds a CPU's modalias of 358
characters (coldplug loaded kvm_intel and crc32c_intel for cpu0), and no line of list or requests
is wider than the terminal; piped, or with -l, the whole modalias is there. Colours mark failures
and refusals on a terminal only; output goes through the pager there."""
import os
import pty
import re
import struct
import subprocess
import sys
import tempfile
import termios
import fcntl
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv, WORLD  # noqa: E402

# A CPU modalias in the kernel's format (print_cpu_modalias()), as long as an x86 guest's.
CPU_MODALIAS = ('cpu:type:x86,ven0000fam0006mod003A:feature:' + ''.join(
    ',%04X' % f for f in [*range(0x0, 0xA), *range(0xB, 0x12), 0x13, *range(0x15, 0x1E), 0x1F,
                          0x2B, 0x34, 0x3A, 0x3B, 0x3D, 0x68, 0x6F, 0x70, 0x72, *range(0x74, 0x77),
                          0x78, 0x79, 0x80, 0x81, 0x89, 0x8C, 0x8D, 0x91, *range(0x93, 0x9F),
                          0xC0, 0xC5, 0xE1]))
CPU_DEVICE = '/devices/system/cpu/cpu0'
CPU_MODULES = ('module kvm\n'
               'module kvm_intel deps=kvm aliases=cpu:type:x86,ven*fam*mod*:feature:*,0089,*\n'
               'module crc32c_intel aliases=cpu:type:x86,ven*fam*mod*:feature:*,0094,*\n')
ANSI = re.compile(r'\x1b\[[0-9;]*m')
COLUMNS = 80


def visible(text):
    return ANSI.sub('', text)


class Terminal(unittest.TestCase):
    env = None

    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix='lkmctl-terminal-')
        world = os.path.join(cls.scratch, 'world.conf')
        with open(WORLD) as f, open(world, 'w') as out:
            out.write(f.read() + CPU_MODULES)
        cls.env = BusEnv(world=world)
        try:
            device = os.path.join(cls.env.dir, 'sys', CPU_DEVICE.lstrip('/'))
            os.makedirs(device)
            with open(os.path.join(device, 'modalias'), 'w') as f:
                f.write(CPU_MODALIAS + '\n')
            os.makedirs(os.path.join(cls.env.dir, 'etc'))
            with open(os.path.join(cls.env.dir, 'etc', 'lkmd.conf'), 'w') as f:
                f.write('[Deny]\nRequests=fs-cramfs\n')
            cls.env.start()
            deadline = time.monotonic() + 15
            while 'crc32c_intel' not in cls.env.proc_modules():
                assert time.monotonic() < deadline, 'coldplug did not load the CPU modules'
                time.sleep(0.05)
            for name in ('fs-vfat', 'fs-cramfs', 'broken'):
                cls.piped('load', name)
        except BaseException:
            cls.env.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.env.stop()

    @classmethod
    def piped(cls, *args, **extra):
        return subprocess.run([cls.env.lkmctl_path(), *args], capture_output=True, text=True,
                              timeout=60, env=dict(cls.env.env, TZ='UTC', **extra))

    def in_terminal(self, *args, pager='', **extra):
        """lkmctl in a pseudo-terminal of 80 columns: (exit status, what the terminal showed)."""
        env = {k: v for k, v in self.env.env.items() if k not in ('SYSTEMD_COLORS', 'COLUMNS')}
        env.update(TZ='UTC', TERM='xterm-256color', SYSTEMD_PAGER=pager, **extra)
        pid, fd = pty.fork()
        if pid == 0:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack('HHHH', 24, COLUMNS, 0, 0))
            os.execve(self.env.lkmctl_path(), ['lkmctl', *args], env)
        out = b''
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            out += chunk
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), out.decode().replace('\r\n', '\n')

    def assertFitsTheTerminal(self, text):
        for line in visible(text).splitlines():
            self.assertLessEqual(len(line), COLUMNS, line)

    def test_list_fits_80_columns_by_cutting_the_trigger(self):
        status, text = self.in_terminal('list')
        self.assertEqual(status, 0, text)
        self.assertFitsTheTerminal(text)
        row = next(line for line in visible(text).splitlines() if line.startswith('kvm_intel'))
        self.assertIn('cpu:type:x86,ven0000', row)
        self.assertIn('…', row)
        self.assertNotIn(CPU_MODALIAS, text)

    def test_requests_fit_80_columns_by_cutting_request_and_device(self):
        status, text = self.in_terminal('requests')
        self.assertEqual(status, 0, text)
        self.assertFitsTheTerminal(text)
        self.assertIn('cpu:type:x86,', text)
        self.assertNotIn(CPU_MODALIAS, text)

    def test_piped_output_is_never_cut(self):
        for command in ('list', 'requests'):
            with self.subTest(command=command):
                result = self.piped(command, COLUMNS='80')
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn(CPU_MODALIAS, result.stdout)
                self.assertNotIn('…', result.stdout)

    def test_full_shows_the_whole_modalias_on_a_terminal(self):
        _, text = self.in_terminal('-l', 'requests')
        self.assertIn(CPU_MODALIAS, text)
        self.assertIn(CPU_DEVICE, text)

    def test_columns_are_two_spaces_apart_for_awk(self):
        rows = self.piped('--no-legend', 'requests').stdout.splitlines()
        cpu = next(row for row in rows if CPU_MODALIAS in row)
        self.assertEqual(re.split(r' {2,}', cpu)[1:], [CPU_MODALIAS, 'coldplug', 'loaded',
                                                      'crc32c_intel,kvm,kvm_intel', CPU_DEVICE])

    def test_colours_mark_failures_and_refusals_on_a_terminal_only(self):
        _, text = self.in_terminal('requests')
        red, yellow = '\x1b[0;1;31m', '\x1b[0;1;33m'
        self.assertIn(yellow + 'denied', text)
        self.assertIn(red + 'failed', text)
        self.assertNotIn(red + 'loaded', text)
        self.assertNotIn('\x1b[', self.piped('requests').stdout)
        self.assertNotIn('\x1b[', self.in_terminal('requests', NO_COLOR='1')[1])
        self.assertNotIn('\x1b[', self.in_terminal('requests', SYSTEMD_COLORS='0')[1])
        self.assertIn(yellow + 'denied', self.piped('requests', SYSTEMD_COLORS='1').stdout)

    def test_failures_are_red_on_a_terminal(self):
        status, text = self.in_terminal('info', 'never_loaded')
        self.assertEqual(status, 3)
        self.assertIn("\x1b[0;1;31mlkmctl: cannot show 'never_loaded': module is not loaded", text)

    def test_output_goes_through_the_pager_on_a_terminal_unless_no_pager(self):
        status, text = self.in_terminal('list', pager='sed s/^/paged:/')
        self.assertEqual(status, 0, text)
        self.assertTrue(all(line.startswith('paged:') for line in text.splitlines()), text)
        _, text = self.in_terminal('--no-pager', 'list', pager='sed s/^/paged:/')
        self.assertNotIn('paged:', text)
        self.assertNotIn('paged:', self.piped('list', SYSTEMD_PAGER='sed s/^/paged:/').stdout)

    def test_the_pager_gets_systemds_less_options(self):
        status, text = self.in_terminal('list', pager='sh -c "echo LESS=$LESS; cat"')
        self.assertEqual(status, 0, text)
        self.assertIn('LESS=FRSXMK', text)


if __name__ == '__main__':
    unittest.main(verbosity=2)
