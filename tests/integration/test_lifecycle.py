#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""lkmd's own lifecycle: reloading its configuration, stopping with work in flight."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv  # noqa: E402


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.env = BusEnv()
        os.makedirs(os.path.join(self.env.dir, 'etc', 'lkmd.conf.d'), exist_ok=True)
        self.write('lkmd.conf', '[Deny]\nRequests = fs-vfat\n')
        self.env.start()

    def tearDown(self):
        self.env.stop()

    def write(self, name, text):
        with open(os.path.join(self.env.dir, 'etc', name), 'w') as f:
            f.write(text)

    def load_error(self, name):
        out = self.env.call('LoadModule', 'string:' + name)
        return out.stderr if out.returncode != 0 else ''

    def test_reload_applies_a_valid_configuration(self):
        self.assertIn('org.lkmd1.Error.Denied', self.load_error('fs-vfat'))
        self.write('lkmd.conf', '[Deny]\nRequests = net-pf-1\n')
        out = self.env.call('Reload')
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.load_error('fs-vfat'), '')

    def test_reload_applies_every_valid_line_and_names_the_bad_ones(self):
        self.write('lkmd.conf.d/90-broken.conf', '[Deny]\nRequests = fs-cramfs\nnonsense\n')
        out = self.env.call('Reload')
        self.assertIn('org.lkmd1.Error.InvalidConfig', out.stderr)
        self.assertIn('90-broken.conf:3', out.stderr)
        self.assertIn('org.lkmd1.Error.Denied', self.load_error('fs-vfat'))
        self.assertIn('org.lkmd1.Error.Denied', self.load_error('fs-cramfs'))
        self.assertIsNone(self.env.daemon.poll())

    # Once a systemd time span lkmd did not know cost the whole file, its [Deny] with it.
    def test_a_time_span_in_systemds_syntax_costs_nothing(self):
        self.write('lkmd.conf', '[Autoclean]\nIdleTimeout=1min 30s\n[Deny]\nModules=dummy\n')
        out = self.env.call('Reload')
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn('org.lkmd1.Error.Denied', self.load_error('dummy'))

    def property(self, name):
        out = self.env.run(['busctl', '--system', '--json=short', 'get-property', 'org.lkmd1',
                            '/org/lkmd1', 'org.lkmd1.Manager', name])
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)['data']

    def test_reload_shows_its_files_and_errors_and_says_they_changed(self):
        conf = os.path.join(self.env.dir, 'etc')
        self.assertEqual(self.property('ConfigFiles'), [os.path.join(conf, 'lkmd.conf')])
        self.assertEqual(self.property('ConfigErrors'), [])
        monitor = subprocess.Popen(
            ['dbus-monitor', '--system', "type='signal',member='PropertiesChanged',"
             "path='/org/lkmd1'"], env=self.env.env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        try:
            time.sleep(0.5)  # dbus-monitor has installed its match
            self.write('lkmd.conf', '[Hotplug]\nMode=observe\n[Autoclean]\nIdleTimeout=5min\n')
            self.assertEqual(self.env.call('Reload').returncode, 0)
            self.assertEqual(self.property('HotplugMode'), 'observe')
            self.assertEqual(self.property('IdleTimeoutUsec'), 300 * 1000 * 1000)
            self.write('lkmd.conf.d/90-broken.conf', 'nonsense\n')
            self.assertNotEqual(self.env.call('Reload').returncode, 0)
            self.assertEqual(self.property('ConfigFiles'), [
                os.path.join(conf, 'lkmd.conf'), os.path.join(conf, 'lkmd.conf.d', '90-broken.conf')])
            errors = self.property('ConfigErrors')
            self.assertIn('90-broken.conf:1: expected Key=Value', errors[0])
            self.assertTrue(all('90-broken.conf' in error for error in errors), errors)
            self.assertEqual(self.property('HotplugMode'), 'observe', 'the running one stays')
            time.sleep(0.5)
        finally:
            monitor.terminate()
        seen = monitor.communicate(timeout=10)[0]
        # One PropertiesChanged per reload names the status properties (Metrics has its own).
        self.assertEqual(seen.count('string "ConfigErrors"'), 2, seen)

    def test_sighup_reloads(self):
        self.write('lkmd.conf', '')
        self.env.daemon.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while 'Reloaded the configuration' not in self.env.log():
            self.assertLess(time.monotonic(), deadline, self.env.log())
            time.sleep(0.05)
        self.assertEqual(self.load_error('fs-vfat'), '')

    def test_reload_needs_privileges(self):
        out = self.env.call('Reload', unprivileged=True)
        self.assertIn('org.freedesktop.DBus.Error.AccessDenied', out.stderr)

    def test_stop_waits_for_the_load_in_flight_and_answers_it(self):
        load = subprocess.Popen(['busctl', '--system', 'call', 'org.lkmd1', '/org/lkmd1',
                                 'org.lkmd1.Manager', 'LoadModule', 's', 'slow'],
                                env=self.env.env, stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # "slow" spends 1.5 s in its init: the load is in flight now
        self.assertIsNone(load.poll())
        self.env.daemon.send_signal(signal.SIGTERM)
        stdout, _ = load.communicate(timeout=30)
        self.assertEqual(load.returncode, 0)
        self.assertIn('"slow"', stdout)
        self.assertEqual(self.env.daemon.wait(30), 0)
        self.assertIn('Stopping once 1 loads and unloads in flight are done', self.env.log())
        self.assertIn('slow', self.env.proc_modules())


if __name__ == '__main__':
    unittest.main(verbosity=2)
