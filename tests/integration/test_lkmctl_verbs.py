#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What lkmctl does beyond listing: the documented exit statuses, aliases where a module is
expected, --json=short, monitor, the filters of requests, reload. The real lkmctl against the
real lkmd on the simulated kernel (world.conf), over a private bus."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv  # noqa: E402
from test_lkmctl import (E1000_DEVICE, E1000_MODALIAS, LkmctlTest,  # noqa: E402
                         add_unbound_pci_device, wait_until)

USB_STORAGE_MODALIAS = 'usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00'


class ExitStatus(LkmctlTest):
    """0 success, 1 refused or failed, 2 usage, 3 not loaded, 4 no such module (7, lkmd not
    running, and status's 3 are in test_lkmctl.DaemonUnreachable)."""

    def status_of(self, *args):
        return self.lkmctl(*args).returncode

    def test_success_is_0(self):
        self.assertEqual(self.status_of('list'), 0)
        self.assertEqual(self.status_of('load', 'dummy'), 0)

    def test_a_refusal_or_failure_is_1(self):
        self.assertEqual(self.status_of('load', 'busy'), 0)
        self.assertEqual(self.status_of('unload', 'busy'), 1)  # in use
        self.assertEqual(self.status_of('load', 'broken'), 1)
        self.assertEqual(self.status_of('pin', 'ext4_external'), 1)  # lkmd did not load it
        self.assertEqual(self.status_of('info', 'a/b'), 1)  # invalid name

    def test_a_usage_error_is_2(self):
        for args in (('--frob', 'list'), ('frob',), ('load',), ('--json=yaml', 'list'),
                     ('requests', '--since=soon')):
            with self.subTest(args=args):
                self.assertEqual(self.status_of(*args), 2)

    def test_a_module_that_is_not_loaded_is_3(self):
        for verb in ('info', 'unload', 'pin', 'unpin'):
            with self.subTest(verb=verb):
                result = self.lkmctl(verb, 'never_loaded')
                self.assertEqual(result.returncode, 3, result.stderr)
                self.assertIn('module is not loaded', result.stderr)

    def test_no_such_module_is_4(self):
        for verb in ('info', 'load', 'unload', 'pin', 'unpin'):
            with self.subTest(verb=verb):
                result = self.lkmctl(verb, 'nosuch')
                self.assertEqual(result.returncode, 4, result.stderr)
                self.assertEqual(result.stderr,
                                 "lkmctl: cannot %s 'nosuch': no such module\n"
                                 % ('show' if verb == 'info' else verb))


class Aliases(LkmctlTest):
    """info, unload, pin and unpin take what load takes and say which module they mean."""

    def test_info_of_an_alias_shows_its_module(self):
        self.assertSucceeds(self.lkmctl('load', 'vfat'))
        result = self.lkmctl('info', 'fs-vfat')
        self.assertSucceeds(result)
        self.assertIn('      Module: vfat\n', result.stdout)
        self.assertEqual(self.json_of('info', 'fs-vfat')['name'], 'vfat')

    def test_unload_of_an_alias_says_which_module_and_unloads_it(self):
        self.assertSucceeds(self.lkmctl('load', 'dummy'))
        result = self.lkmctl('unload', 'rtnl-link-dummy')
        self.assertSucceeds(result)
        self.assertEqual(result.stdout, 'rtnl-link-dummy is dummy.\nUnloaded dummy.\n')
        self.assertNotIn('dummy', self.env.proc_modules())

    def test_unload_of_a_modalias_acts_on_its_one_module(self):
        self.assertSucceeds(self.lkmctl('load', 'e1000'))
        result = self.lkmctl('--json=short', 'unload', 'pci:v00008086d0000100Esv0sd0bc02sc00i00')
        # e1000 is bound to a device: the unload is refused, naming the module it meant.
        self.assertEqual(result.returncode, 1)
        self.assertIn("bound to 0000:00:03.0", result.stderr)

    def test_pin_and_unpin_take_aliases(self):
        self.assertSucceeds(self.lkmctl('load', 'char-major-10-237'))
        result = self.lkmctl('pin', 'char-major-10-237')
        self.assertSucceeds(result)
        self.assertEqual(result.stdout, 'char-major-10-237 is loop.\nPinned loop.\n')
        self.assertTrue(self.json_of('info', 'loop')['pinned'])
        self.assertEqual(self.json_of('unpin', 'devname:loop-control'),
                         {'request': 'devname:loop-control', 'module': 'loop', 'pinned': False})

    def test_the_module_s_own_name_in_either_spelling_is_not_announced(self):
        self.assertSucceeds(self.lkmctl('load', 'nls_cp437'))
        self.assertEqual(self.lkmctl('pin', 'nls-cp437').stdout, 'Pinned nls_cp437.\n')

    def test_an_alias_of_several_modules_is_refused_naming_them(self):
        result = self.lkmctl('unload', USB_STORAGE_MODALIAS)
        self.assertEqual(result.returncode, 1)
        self.assertIn('stands for several modules: uas, usb_storage', result.stderr)

    def test_a_name_with_a_dot_is_refused_before_asking_lkmd(self):
        for verb in ('info', 'unload', 'pin', 'unpin'):
            with self.subTest(verb=verb):
                self.assertFailsWith(self.lkmctl(verb, 'e1000.x'),
                                     "lkmctl: invalid module name 'e1000.x': contains '.' "
                                     "(libkmod would cut the name there)")

    def test_quiet_says_nothing_on_success(self):
        self.assertSucceeds(self.lkmctl('load', 'dummy'))
        result = self.lkmctl('-q', 'unload', 'rtnl-link-dummy')
        self.assertSucceeds(result)
        self.assertEqual(result.stdout, '')


class JsonModes(LkmctlTest):
    def test_short_is_one_line_pretty_is_indented(self):
        short = self.lkmctl('--json=short', 'list')
        self.assertSucceeds(short)
        self.assertEqual(len(short.stdout.splitlines()), 1)
        pretty = self.lkmctl('--json=pretty', 'list')
        self.assertEqual(json.loads(pretty.stdout), json.loads(short.stdout))
        self.assertGreater(len(pretty.stdout.splitlines()), 1)
        self.assertEqual(self.lkmctl('--json', 'list').stdout, pretty.stdout)

    def test_j_is_short_when_piped_and_off_is_text(self):
        self.assertEqual(len(self.lkmctl('-j', 'list').stdout.splitlines()), 1)
        self.assertIn(' listed.', self.lkmctl('--json=off', 'list').stdout)


class Monitor(LkmctlTest):
    def start_monitor(self, *args):
        monitor = subprocess.Popen([self.env.lkmctl_path(), 'monitor', *args],
                                   env=dict(self.env.env, TZ='UTC'), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        self.assertIn('Monitoring', monitor.stderr.readline())
        return monitor

    def read_until(self, monitor, last, timeout=15):
        """The lines monitor prints up to the first that contains last; then stops it with
        SIGTERM, which it must take as the end of a normal run."""
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in monitor.stdout],
                         daemon=True).start()
        seen = []
        try:
            while not seen or last not in seen[-1]:
                seen.append(lines.get(timeout=timeout))
        except queue.Empty:
            self.fail('no %r in %r' % (last, seen))
        finally:
            monitor.send_signal(signal.SIGTERM)
            monitor.wait(10)
        self.assertEqual(monitor.returncode, 0)
        return seen

    def test_json_follows_requests_loads_and_unloads_one_object_per_line(self):
        monitor = self.start_monitor('--json')
        self.assertSucceeds(self.lkmctl('load', 'fs-vfat'))
        self.lkmctl('load', 'fs-nothing')
        self.assertSucceeds(self.lkmctl('unload', 'vfat'))
        events = [json.loads(line) for line in self.read_until(monitor, '"unloaded"')]
        seen = [(e['event'], e.get('module') or e.get('request')) for e in events]
        self.assertEqual(seen, [('loaded', 'fat'), ('loaded', 'vfat'), ('request', 'fs-vfat'),
                                ('request', 'fs-nothing'), ('unloaded', 'vfat')])
        vfat = events[2]
        self.assertEqual((vfat['origin'], vfat['result'], vfat['modules']),
                         ('bus', 'loaded', ['fat', 'vfat']))
        self.assertGreaterEqual(vfat['time_usec'], vfat['arrived_at_usec'])
        self.assertEqual((events[3]['result'], events[3]['message']),
                         ('not-found', 'no such module'))
        self.assertEqual(events[4]['reason'], 'request')

    def test_text_has_a_line_per_event(self):
        monitor = self.start_monitor()
        self.lkmctl('load', 'nls_cp437')
        lines = self.read_until(monitor, ' request ')
        self.assertRegex(lines[0], r'^\w{3} \d\d \d\d:\d\d:\d\d loaded nls_cp437 \(bus\)$')
        self.assertRegex(lines[1], r' request nls_cp437 from bus: loaded nls_cp437 in \d+(us|ms)$')

    def test_sees_lkmd_leave_and_come_back(self):
        monitor = self.start_monitor('--json')
        self.env.daemon.send_signal(signal.SIGTERM)
        self.env.daemon.wait(30)
        self.env.start_daemon()
        self.lkmctl('load', 'loop')
        events = [json.loads(line)['event'] for line in self.read_until(monitor, '"request"')]
        self.assertEqual(events[:2], ['stopped', 'started'])

    def test_ignores_signals_others_send_in_lkmd_s_name(self):
        monitor = self.start_monitor('--json')
        # Anyone may send a signal with lkmd's path and interface; only lkmd's own count.
        subprocess.run(['dbus-send', '--system', '--type=signal', '/org/lkmd1',
                        'org.lkmd1.Manager.ModuleUnloaded', 'string:e1000', 'string:idle'],
                       env=self.env.env, check=True, timeout=30)
        self.lkmctl('load', 'nls_cp437')
        events = [json.loads(line) for line in self.read_until(monitor, '"request"')]
        self.assertNotIn('e1000', [e.get('module') for e in events])


class RequestFilters(LkmctlTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lkmctl('load', 'fs-vfat')
        cls.lkmctl('load', 'no_such_module')
        subprocess.run([cls.env.helper_path(), '-q', '--', 'char-major-10-237'],
                       env={'LKMD_REQUEST_SOCKET': cls.env.request_socket,
                            'LKMD_KMOD_MODPROBE': '/bin/false'}, timeout=30, check=True)

    def names(self, *args):
        return [r['request'] for r in self.json_of('requests', *args)]

    def test_filter_by_origin_and_result(self):
        self.assertEqual(self.names('--origin=kernel'), ['char-major-10-237'])
        self.assertEqual(self.names('--result=not-found,failed'), ['no_such_module'])
        self.assertEqual(self.names('--origin=bus', '--result=loaded'), ['fs-vfat'])

    def test_filter_by_time(self):
        self.assertEqual(len(self.names('--since=10min ago')), 3)
        self.assertEqual(self.names('--since=@%d' % (time.time() + 3600)), [])

    def test_filters_are_for_requests_only(self):
        result = self.lkmctl('list', '--origin=kernel')
        self.assertEqual(result.returncode, 2)
        self.assertEqual(self.lkmctl('list', '--uid=0').returncode, 2)

    def test_filter_by_requester_uid_and_unit(self):
        # The simulated /proc has no lkmctl in it, so no request has a known requester here
        # (tests/unit/test_lkmctl_requests.cpp and the VM suite test the matching itself).
        self.assertEqual(self.names('--uid=0,%d' % os.getuid()), [])
        self.assertEqual(self.names('--unit=no-such.service'), [])
        self.assertEqual(len(self.names()), 3)
        result = self.lkmctl('requests', '--uid=no-such-user-here')
        self.assertEqual(result.returncode, 2)
        self.assertIn("unknown user 'no-such-user-here'", result.stderr)
        self.assertEqual(self.lkmctl('requests', '--unit=').returncode, 2)

    def test_requests_table_names_the_cause(self):
        result = self.lkmctl('requests', '--origin=bus', '--result=loaded', '-l')
        self.assertSucceeds(result)
        self.assertIn('CAUSE', result.stdout.splitlines()[0])
        self.assertRegex(result.stdout, r"fs-vfat .* unknown \(pid \d+ exited before lkmd looked\)")


class Why(LkmctlTest):
    """why: a module back to what caused it, from its record."""

    @classmethod
    def prepare(cls, env):
        add_unbound_pci_device(env, E1000_DEVICE, E1000_MODALIAS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        wait_until(lambda: 'e1000' in cls.env.proc_modules(), 'coldplug to load e1000')
        cls.lkmctl('load', 'fs-vfat')

    def test_a_dependency_names_the_module_the_request_and_the_caller(self):
        result = self.lkmctl('why', 'fat')
        self.assertSucceeds(result)
        # The simulated /proc has no lkmctl in it: lkmd says it could not look.
        self.assertRegex(result.stdout,
                         r"^fat (←|<-) dependency of vfat (←|<-) fs-vfat \(over D-Bus\) (←|<-) "
                         r"unknown \(pid \d+ exited before lkmd looked\)\n$")

    def test_json_has_the_links_and_the_requester(self):
        why = self.json_of('why', 'fat')
        self.assertEqual(why['module'], 'fat')
        self.assertEqual(why['origin'], 'bus')
        self.assertEqual([link['kind'] for link in why['chain']],
                         ['module', 'dependency', 'request', 'requester'])
        self.assertEqual(why['requester']['known'], False)
        self.assertEqual(why['requester']['uid'], -1)

    def test_a_coldplugged_module_names_its_device(self):
        result = self.lkmctl('why', 'e1000')
        self.assertSucceeds(result)
        # The simulated device has no subsystem link; the VM suite sees '(pci)'.
        self.assertRegex(result.stdout, r'^e1000 (←|<-) pci:v00008086d0000100E\S* (←|<-) '
                         r'coldplug of %s\n$' % E1000_DEVICE)

    def test_a_module_lkmd_did_not_load_has_no_requester(self):
        why = self.json_of('why', 'ext4_external')
        self.assertEqual([link['kind'] for link in why['chain']], ['module', 'external'])
        self.assertIsNone(why['requester'])

    def test_a_module_that_is_not_loaded_is_3(self):
        self.assertEqual(self.lkmctl('why', 'never_loaded').returncode, 3)


class Reload(LkmctlTest):
    def test_reload_applies_the_configuration_and_status_shows_it(self):
        with open(os.path.join(self.env.config_dir, 'lkmd.conf'), 'w') as f:
            f.write('[Hotplug]\nMode=observe\n')
        self.assertEqual(self.lkmctl('reload').stdout, "Reloaded lkmd's configuration.\n")
        status = self.json_of('status')
        self.assertEqual(status['hotplug_mode'], 'observe')
        self.assertEqual(status['config_files'], [os.path.join(self.env.config_dir,
                                                               'lkmd.conf')])

    def test_a_broken_line_fails_the_reload_and_status_shows_it(self):
        path = os.path.join(self.env.config_dir, 'lkmd.conf.d', '90-broken.conf')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('nonsense\n')
        try:
            result = self.lkmctl('reload')
            self.assertEqual(result.returncode, 1)
            self.assertTrue(result.stderr.startswith("lkmctl: cannot reload lkmd's configuration: "),
                            result.stderr)
            self.assertIn(path + ":1", result.stderr)
            text = self.lkmctl('status').stdout
            self.assertIn('Config errors: ' + path + ':1: expected Key=Value', text)
        finally:
            os.unlink(path)
            self.lkmctl('reload')

    def test_reload_needs_privileges(self):
        result = self.lkmctl('reload', unprivileged=True)
        self.assertEqual(result.returncode, 1)
        self.assertIn('permission denied', result.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
