#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The real lkmctl against the real lkmd on a simulated kernel (world.conf), over a private bus.

Each class starts its own world, so that what one class loads cannot change what another sees.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv, build_dir, start_dbus_daemon  # noqa: E402

# A PCI device without a driver, present before lkmd starts: coldplug loads e1000 for it.
E1000_DEVICE = '/devices/pci0000:00/0000:00:03.0'
E1000_MODALIAS = 'pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00'

MODULE_KEYS = ['name', 'origin', 'trigger', 'device', 'refcnt', 'size', 'state', 'holders',
               'loaded_at', 'loaded_at_usec']
REQUEST_KEYS = ['request', 'origin', 'device', 'time', 'time_usec', 'duration_usec', 'result',
                'message', 'modules']
ISO_8601_UTC = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
# systemctl's forms: "Wed 2024-05-01 12:00:00 UTC" and "42ms ago".
TIMESTAMP = re.compile(r'^[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$')
RELATIVE = re.compile(r'^(now|\d+(us|ms|s|min)( \d+s)? ago)$')
USAGE_HINT = "Try 'lkmctl --help'."


def add_unbound_pci_device(env, devpath, modalias):
    device = os.path.join(env.dir, 'sys', devpath.lstrip('/'))
    os.makedirs(device)
    with open(os.path.join(device, 'modalias'), 'w') as f:
        f.write(modalias + '\n')
    bus = os.path.join(env.dir, 'sys', 'bus', 'pci', 'devices')
    os.makedirs(bus)
    os.symlink(os.path.relpath(device, bus), os.path.join(bus, os.path.basename(devpath)))


def wait_until(predicate, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError('timed out waiting for ' + what)


class LkmctlTest(unittest.TestCase):
    """A world per class: setUpClass starts it, prepare() may add to it first."""
    env = None

    @classmethod
    def prepare(cls, env):
        pass

    @classmethod
    def setUpClass(cls):
        env = BusEnv()
        try:
            cls.prepare(env)
            env.start()
        except BaseException:
            env.stop()
            raise
        cls.env = env

    @classmethod
    def tearDownClass(cls):
        if cls.env is not None:
            if os.environ.get('LKMD_TEST_VERBOSE'):
                print(cls.env.log(), file=sys.stderr)
            cls.env.stop()

    @classmethod
    def lkmctl(cls, *args, unprivileged=False, tz='UTC'):
        argv = [cls.env.lkmctl_path(), *args]
        return subprocess.run(argv, env=dict(cls.env.env, TZ=tz), capture_output=True, text=True,
                              timeout=150,
                              preexec_fn=BusEnv.as_nobody() if unprivileged else None)

    def assertSucceeds(self, result):
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, '')

    def assertFailsWith(self, result, line, status=1):
        self.assertEqual(result.returncode, status, result.stdout + result.stderr)
        self.assertEqual(result.stdout, '')
        self.assertEqual(result.stderr, line + '\n')

    def assertHasInOrder(self, actual, expected):
        """Every expected item is in actual, in this order; actual may have more (newer fields)."""
        self.assertEqual([item for item in actual if item in expected], expected)

    def json_of(self, *args, unprivileged=False):
        result = self.lkmctl('--json', *args, unprivileged=unprivileged)
        self.assertSucceeds(result)
        return json.loads(result.stdout)


def info_fields(text):
    """The 'Key: value' lines of info, in order."""
    return dict(line.strip().split(': ', 1) for line in text.splitlines())


def table_rows(text):
    """The rows of a list or requests table as lists of cells, header first; the footer apart."""
    body, _, footer = text.rpartition('\n\n')
    return [re.split(r'\s{2,}', line.strip()) for line in body.splitlines()], footer


class LoadedModules(LkmctlTest):
    """fs-vfat loaded with lkmctl, e1000 by coldplug for a device, ext4_external by someone else."""

    @classmethod
    def prepare(cls, env):
        add_unbound_pci_device(env, E1000_DEVICE, E1000_MODALIAS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        wait_until(lambda: 'e1000' in cls.env.proc_modules(), 'coldplug to load e1000')
        cls.load = cls.lkmctl('load', 'fs-vfat')

    def test_load_says_each_inserted_module_dependencies_first(self):
        self.assertSucceeds(self.load)
        self.assertEqual(self.load.stdout, 'Inserted fat.\nInserted vfat.\n')
        self.assertIn('vfat', self.env.proc_modules())

    def test_loading_a_loaded_or_builtin_module_inserts_nothing(self):
        for name in ('vfat', 'unix'):
            with self.subTest(name=name):
                result = self.lkmctl('load', name)
                self.assertSucceeds(result)
                self.assertEqual(result.stdout,
                                 "Nothing inserted: '%s' is already loaded or built in.\n" % name)

    def test_load_json_has_request_and_inserted(self):
        self.assertEqual(self.json_of('load', 'fs-vfat'), {'request': 'fs-vfat', 'inserted': []})

    def test_list_has_a_vfat_row_loaded_over_the_bus(self):
        result = self.lkmctl('list')
        self.assertSucceeds(result)
        rows, footer = table_rows(result.stdout)
        self.assertEqual(rows[0][:5], ['MODULE', 'ORIGIN', 'TRIGGER', 'REFCNT', 'LOADED'])
        by_name = {row[0]: row for row in rows[1:]}
        self.assertEqual(by_name['vfat'][1:4], ['bus', 'fs-vfat', '0'])
        self.assertRegex(by_name['vfat'][4], RELATIVE)
        self.assertEqual(by_name['fat'][1:4], ['bus', 'fs-vfat', '1'])
        self.assertEqual(by_name['e1000'][1:3], ['coldplug', E1000_MODALIAS])
        self.assertEqual(by_name['ext4_external'][1:5], ['external', '-', '0', '-'])
        self.assertEqual([row[0] for row in rows[1:]], sorted(by_name))
        self.assertEqual(footer, '%d modules listed.\n' % len(by_name))

    def test_list_without_legend_prints_only_rows(self):
        result = self.lkmctl('--no-legend', 'list')
        self.assertSucceeds(result)
        names = [line.split()[0] for line in result.stdout.splitlines()]
        self.assertEqual(names, sorted(self.env.proc_modules()))

    def test_list_json_has_the_documented_keys(self):
        modules = {module['name']: module for module in self.json_of('list')}
        self.assertEqual(sorted(modules), sorted(self.env.proc_modules()))
        for module in modules.values():
            self.assertHasInOrder(list(module), MODULE_KEYS)
        vfat = modules['vfat']
        self.assertEqual((vfat['origin'], vfat['trigger'], vfat['device']), ('bus', 'fs-vfat', ''))
        self.assertRegex(vfat['loaded_at'], ISO_8601_UTC)
        self.assertGreater(vfat['loaded_at_usec'], 0)
        self.assertEqual(modules['fat']['holders'], ['vfat'])
        self.assertEqual(modules['e1000']['device'], E1000_DEVICE)
        self.assertIsNone(modules['ext4_external']['loaded_at'])

    def test_info_time_is_the_json_time_in_local_time(self):
        utc = self.json_of('info', 'vfat')['loaded_at']
        local = info_fields(self.lkmctl('info', 'vfat').stdout)['Loaded'].split('; ')[0]
        self.assertEqual(local[4:], utc.replace('T', ' ').replace('Z', ' UTC'))

    def test_info_shows_every_field(self):
        result = self.lkmctl('info', 'vfat')
        self.assertSucceeds(result)
        fields = info_fields(result.stdout)
        self.assertHasInOrder(list(fields), ['Module', 'Origin', 'Trigger', 'Device', 'State',
                                             'RefCount', 'Size', 'Loaded', 'Holders', 'Drivers',
                                             'Devices'])
        self.assertEqual(fields['Module'], 'vfat')
        self.assertEqual(fields['Origin'], 'bus')
        self.assertEqual(fields['Trigger'], 'fs-vfat')
        self.assertEqual(fields['Device'], '-')
        self.assertEqual(fields['State'], 'live')
        when, ago = fields['Loaded'].split('; ')
        self.assertRegex(when, TIMESTAMP)
        self.assertRegex(ago, RELATIVE)

    def test_info_of_a_coldplugged_module_names_its_device(self):
        result = self.lkmctl('info', 'e1000')
        self.assertSucceeds(result)
        fields = info_fields(result.stdout)
        self.assertEqual(fields['Origin'], 'coldplug')
        self.assertEqual(fields['Device'], E1000_DEVICE)
        self.assertEqual(fields['Drivers'], 'pci:e1000')

    def test_info_json_adds_drivers_and_devices_to_the_list_keys(self):
        e1000 = self.json_of('info', 'e1000')
        self.assertHasInOrder(list(e1000), MODULE_KEYS + ['drivers', 'devices'])
        self.assertEqual(e1000['device'], E1000_DEVICE)
        self.assertEqual(e1000['origin'], 'coldplug')
        self.assertEqual(e1000['drivers'], ['pci:e1000'])
        self.assertEqual(self.json_of('info', 'vfat')['device'], '')

    def test_info_of_a_builtin_module_says_builtin(self):
        result = self.lkmctl('info', 'unix')
        self.assertSucceeds(result)
        self.assertEqual(info_fields(result.stdout)['State'], 'builtin')

    def test_status_counts_the_modules_lkmd_loaded(self):
        version = self.lkmctl('--version').stdout.split()[1]
        modules = self.env.proc_modules()
        result = self.lkmctl('status')
        self.assertSucceeds(result)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], '● lkmd %s on org.lkmd1' % version)
        fields = info_fields('\n'.join(lines[1:]))
        self.assertRegex(fields['Active'], r'^running since [A-Z][a-z]{2} .* UTC; .* ago$')
        self.assertEqual(fields['Hotplug'], 'load')
        self.assertEqual(fields['Idle timeout'], '1min')
        self.assertEqual(fields['Config'], 'none (built-in defaults)')
        self.assertEqual(fields['Modules'], '%d loaded, %d of them by lkmd' % (len(modules),
                                                                              len(modules) - 1))
        self.assertRegex(fields['Requests'], r'^\d+ answered: .*\d+ loaded')
        status = self.json_of('status')
        self.assertEqual((status['version'], status['modules'], status['loaded_by_lkmd'],
                          status['running']), (version, len(modules), len(modules) - 1, True))
        self.assertEqual(self.lkmctl('-q', 'status').stdout, '')

    def test_unprivileged_callers_can_read(self):
        for args in (('list',), ('status',), ('requests',), ('info', 'vfat')):
            with self.subTest(args=args):
                self.assertSucceeds(self.lkmctl(*args, unprivileged=True))


class ChangesAndErrors(LkmctlTest):
    def test_unload_says_what_it_unloaded(self):
        self.assertSucceeds(self.lkmctl('load', 'loop'))
        result = self.lkmctl('unload', 'loop')
        self.assertSucceeds(result)
        self.assertEqual(result.stdout, 'Unloaded loop.\n')
        self.assertNotIn('loop', self.env.proc_modules())

    def test_unload_json_names_the_module(self):
        self.assertSucceeds(self.lkmctl('load', 'nls-cp437'))
        self.assertEqual(self.json_of('unload', 'nls-cp437'),
                         {'request': 'nls-cp437', 'unloaded': 'nls_cp437'})

    def test_unknown_module(self):
        self.assertFailsWith(self.lkmctl('load', 'x'), "lkmctl: cannot load 'x': no such module",
                             status=4)

    def test_module_in_use(self):
        self.assertSucceeds(self.lkmctl('load', 'busy'))
        result = self.lkmctl('unload', 'busy')
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith("lkmctl: cannot unload 'busy': module is in use"),
                        result.stderr)
        self.assertIn('busy', self.env.proc_modules())

    def test_module_held_by_another(self):
        self.assertSucceeds(self.lkmctl('load', 'vfat'))
        self.assertFailsWith(self.lkmctl('unload', 'fat'),
                             "lkmctl: cannot unload 'fat': module is in use by vfat")

    def test_builtin_module_cannot_be_unloaded(self):
        self.assertFailsWith(self.lkmctl('unload', 'unix'),
                             "lkmctl: cannot unload 'unix': module is built into the kernel")

    def test_module_not_loaded(self):
        self.assertFailsWith(self.lkmctl('unload', 'never_loaded'),
                             "lkmctl: cannot unload 'never_loaded': module is not loaded", status=3)
        self.assertFailsWith(self.lkmctl('info', 'never_loaded'),
                             "lkmctl: cannot show 'never_loaded': module is not loaded", status=3)

    def test_failing_init_is_reported(self):
        result = self.lkmctl('load', 'broken')
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith("lkmctl: cannot load 'broken': "), result.stderr)
        self.assertNotIn('broken', self.env.proc_modules())

    def test_invalid_names_are_refused_before_calling_lkmd(self):
        cases = {
            'a/b': "contains '/'",
            'x' * 56: 'longer than 55 bytes',
            'fs-$(id)': 'contains characters not allowed in module names',
        }
        for name, why in cases.items():
            for verb in ('load', 'unload', 'info'):
                with self.subTest(name=name, verb=verb):
                    self.assertFailsWith(self.lkmctl(verb, '--', name),
                                         "lkmctl: invalid module name '%s': %s" % (name, why))
        sent = [request['request'] for request in self.json_of('requests')]
        self.assertNotIn('a/b', sent)

    def test_control_characters_are_escaped_in_messages(self):
        self.assertFailsWith(self.lkmctl('load', 'a\x1bb'),
                             "lkmctl: invalid module name 'a\\x1bb': contains control characters")

    def test_usage_errors_exit_2_with_a_hint(self):
        cases = {
            (): 'missing command',
            ('frob',): "unknown command 'frob'",
            ('--frob', 'list'): "unknown option '--frob'",
            ('load',): "missing module name after 'load'",
            ('list', 'vfat'): "unexpected argument 'vfat'",
            ('requests', 'vfat'): "unexpected argument 'vfat'",
        }
        for args, problem in cases.items():
            with self.subTest(args=args):
                self.assertFailsWith(self.lkmctl(*args), 'lkmctl: %s\n%s' % (problem, USAGE_HINT),
                                     status=2)

    def test_unprivileged_load_and_unload_are_refused(self):
        # The private bus has no polkit: root is the only way in, and lkmd says so.
        lacks = ("permission denied: needs CAP_SYS_MODULE (root) or polkit's authorization for "
                 "org.lkmd1.manage; polkit is not running")
        self.assertFailsWith(self.lkmctl('load', 'dummy', unprivileged=True),
                             "lkmctl: cannot load 'dummy': " + lacks)
        self.assertNotIn('dummy', self.env.proc_modules())
        self.assertFailsWith(self.lkmctl('unload', 'ext4_external', unprivileged=True),
                             "lkmctl: cannot unload 'ext4_external': " + lacks)
        self.assertIn('ext4_external', self.env.proc_modules())

    def test_unprivileged_list_works(self):
        result = self.lkmctl('list', unprivileged=True)
        self.assertSucceeds(result)
        self.assertRegex(result.stdout, r'(?m)^ext4_external +external +- ')


class Requests(LkmctlTest):
    """A fresh world, so that the history holds exactly what setUpClass asked for."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lkmctl('load', 'fs-vfat')
        cls.lkmctl('load', 'no_such_module')
        cls.lkmctl('load', 'vfat')
        # A request from the kernel, as the kernel would hand it to the helper.
        subprocess.run([cls.env.helper_path(), '-q', '--', 'char-major-10-237'],
                       env={'LKMD_REQUEST_SOCKET': cls.env.request_socket,
                            'LKMD_KMOD_MODPROBE': '/bin/false'},
                       timeout=30, check=True)

    def test_text_lists_requests_oldest_first(self):
        result = self.lkmctl('requests')
        self.assertSucceeds(result)
        rows, footer = table_rows(result.stdout)
        self.assertEqual(rows[0], ['TIME', 'REQUEST', 'ORIGIN', 'RESULT', 'MODULES', 'CAUSE'])
        # CAUSE: who asked. The simulated /proc has no lkmctl in it, so lkmd cannot say.
        self.assertEqual([row[1:5] for row in rows[1:]], [
            ['fs-vfat', 'bus', 'loaded', 'fat,vfat'],
            ['no_such_module', 'bus', 'not-found', '-'],
            ['vfat', 'bus', 'present', '-'],
            ['char-major-10-237', 'kernel', 'loaded', 'loop'],
        ])
        for row in rows[1:]:
            self.assertRegex(row[5], r'^unknown \((pid \d+ exited before lkmd looked|tracefs .*)\)$')
        for row in rows[1:]:
            self.assertRegex(row[0], TIMESTAMP)
        self.assertEqual(footer, '4 requests listed.\n')

    def test_without_legend_only_rows(self):
        result = self.lkmctl('--no-legend', 'requests')
        self.assertSucceeds(result)
        self.assertEqual(len(result.stdout.splitlines()), 4)
        self.assertNotIn('TIME', result.stdout)

    def test_json_has_the_documented_keys(self):
        requests = self.json_of('requests')
        self.assertEqual(len(requests), 4)
        for request in requests:
            self.assertHasInOrder(list(request), REQUEST_KEYS)
            self.assertRegex(request['time'], ISO_8601_UTC)
            self.assertGreater(request['time_usec'], 0)
            self.assertGreaterEqual(request['duration_usec'], 0)
            self.assertEqual(request['device'], '')
        loaded, missing, present, kernel = requests
        self.assertEqual([loaded[key] for key in ('request', 'result', 'message', 'modules')],
                         ['fs-vfat', 'loaded', '', ['fat', 'vfat']])
        self.assertEqual((missing['result'], missing['message'], missing['modules']),
                         ('not-found', 'no such module', []))
        self.assertEqual(present['result'], 'present')
        self.assertEqual((kernel['origin'], kernel['modules']), ('kernel', ['loop']))
        self.assertLessEqual(loaded['time_usec'], kernel['time_usec'])

    def test_unprivileged_callers_see_the_same(self):
        self.assertEqual(self.json_of('requests', unprivileged=True), self.json_of('requests'))


class DaemonUnreachable(unittest.TestCase):
    """Plain sentences, no D-Bus names; exit 7 (LSB's "not running") for a command that needs
    lkmd, 3 for status, as systemctl status says 3 of a stopped unit."""
    COMMANDS = (('list',), ('requests',), ('info', 'vfat'), ('load', 'vfat'), ('unload', 'vfat'),
                ('reload',))

    def run_lkmctl(self, address, *args):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=address, LC_ALL='C.UTF-8')
        return subprocess.run([os.path.join(build_dir(), 'client', 'lkmctl'), *args], env=env,
                              capture_output=True, text=True, timeout=60)

    def assertFails(self, address, line):
        for args in self.COMMANDS:
            with self.subTest(args=args):
                result = self.run_lkmctl(address, *args)
                self.assertEqual(result.returncode, 7, result.stderr)
                self.assertEqual(result.stdout, '')
                self.assertTrue(result.stderr.startswith(line), result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertNotIn('org.freedesktop', result.stderr)

    def test_without_a_bus(self):
        with tempfile.TemporaryDirectory() as scratch:
            address = 'unix:path=' + os.path.join(scratch, 'no-bus')
            self.assertFails(address, 'lkmctl: cannot reach the system bus: ')
            status = self.run_lkmctl(address, 'status')
            self.assertEqual(status.returncode, 3)
            self.assertEqual(status.stderr,
                             'lkmctl: cannot reach the system bus: No such file or directory\n')

    def test_with_a_bus_but_no_lkmd(self):
        with tempfile.TemporaryDirectory() as scratch:
            bus, socket = start_dbus_daemon(scratch)
            try:
                address = 'unix:path=' + socket
                self.assertFails(address, 'lkmctl: lkmd is not running\n')
                status = self.run_lkmctl(address, 'status')
                self.assertEqual((status.returncode, status.stdout, status.stderr),
                                 (3, 'lkmd is not running.\n', ''))
                quiet = self.run_lkmctl(address, '-q', 'status')
                self.assertEqual((quiet.returncode, quiet.stdout), (3, ''))
                self.assertEqual(json.loads(self.run_lkmctl(address, '--json', 'status').stdout),
                                 {'running': False})
            finally:
                bus.terminate()
                bus.wait(10)


if __name__ == '__main__':
    unittest.main(verbosity=2)
