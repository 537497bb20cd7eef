#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`meson install` puts every file where systemd.pc and dbus-1.pc say, and the installed files
name each other correctly: the units run the installed binaries, the D-Bus activation file
names the installed service, the sysctl drop-in names the installed helper. (systemd-analyze
verify needs the files at their real paths: the systemd guest, tests/vm/test_service.py,
runs it on the installed package.)"""
import configparser
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, '..', '..')


def build_dir():
    return os.environ.get('LKMD_BUILD_DIR') or os.path.join(HERE, '..', '..', 'build')


def pkg_config(package, variable, **defines):
    argv = ['pkg-config', '--variable=' + variable, package]
    argv += ['--define-variable=%s=%s' % item for item in defines.items()]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return out.stdout.strip() if out.returncode == 0 else None


def read(path):
    with open(path) as f:
        return f.read()


def unit_file(path):
    """A unit or D-Bus service file as {section: {key: value}} (last value of a key wins)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=('=',))
    parser.optionxform = str
    with open(path) as f:
        parser.read_file(f)
    return {name: dict(parser[name]) for name in parser.sections()}


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix='lkmd-install-')
        out = subprocess.run(['meson', 'install', '-C', build_dir(), '--no-rebuild', '--quiet',
                              '--destdir', cls.dest], capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise AssertionError('meson install failed:\n' + out.stdout + out.stderr)
        options = json.loads(subprocess.run(
            ['meson', 'introspect', '--buildoptions', build_dir()], capture_output=True,
            text=True, timeout=60, check=True).stdout)
        value = {o['name']: o['value'] for o in options}
        cls.prefix = value['prefix']
        cls.datadir = os.path.join(cls.prefix, value['datadir'])
        cls.sbindir = os.path.join(cls.prefix, value['sbindir'])
        cls.sysconfdir = os.path.join(cls.prefix, value['sysconfdir'])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def installed(self, path):
        full = os.path.join(self.dest, path.lstrip('/'))
        self.assertTrue(os.path.isfile(full), '%s was not installed (under %s: %s)' % (
            path, self.dest, sorted(os.path.relpath(os.path.join(d, f), self.dest)
                                    for d, _, fs in os.walk(self.dest) for f in fs)))
        return full

    def dir_of(self, package, variable, fallback):
        found = pkg_config(package, variable, prefix=self.prefix, datadir=self.datadir)
        if found is None:
            if fallback is None:
                self.skipTest('%s.pc is not installed' % package)
            return fallback
        return found

    def test_units_and_sysctl_go_where_systemd_pc_says(self):
        unit_dir = self.dir_of('systemd', 'systemdsystemunitdir', None)
        service = unit_file(self.installed(os.path.join(unit_dir, 'lkmd.service')))
        socket = unit_file(self.installed(os.path.join(unit_dir, 'lkmd.socket')))
        self.assertEqual(service['Service']['Type'], 'notify')
        exec_start = service['Service']['ExecStart'].split()[0]
        self.installed(exec_start)
        self.assertEqual(os.path.dirname(exec_start), self.sbindir)
        self.assertIn('ListenSequentialPacket', socket['Socket'])

        sysctl = self.installed(os.path.join(self.dir_of('systemd', 'sysctldir', None),
                                             '50-lkmd.conf'))
        settings = [line.split('=', 1) for line in read(sysctl).splitlines()
                    if '=' in line and not line.lstrip().startswith(('#', ';'))]
        self.assertEqual([(k.strip(), v.strip()) for k, v in settings],
                         [('kernel.modprobe', os.path.join(self.sbindir, 'lkmd-modprobe'))])
        self.installed(settings[0][1].strip())

        catalog = read(self.installed(os.path.join(self.dir_of('systemd', 'catalogdir', None),
                                                   'lkmd.catalog')))
        # Every MESSAGE_ID lkmd logs has its entry (the ids live in provenance_log.h).
        with open(os.path.join(SOURCE, 'daemon', 'core', 'provenance_log.h')) as header:
            ids = re.findall(r'"([0-9a-f]{32})"', header.read())
        self.assertEqual(len(ids), 5)
        for message_id in ids:
            self.assertIn('-- ' + message_id + '\n', catalog)

    def test_bus_files_go_where_dbus_pc_says(self):
        services = self.dir_of('dbus-1', 'system_bus_services_dir',
                               os.path.join(self.datadir, 'dbus-1', 'system-services'))
        activation = unit_file(self.installed(os.path.join(services, 'org.lkmd1.service')))
        self.assertEqual(activation['D-BUS Service']['Name'], 'org.lkmd1')
        unit_dir = pkg_config('systemd', 'systemdsystemunitdir', prefix=self.prefix)
        if unit_dir:
            self.installed(os.path.join(unit_dir, activation['D-BUS Service']['SystemdService']))
        data = self.dir_of('dbus-1', 'datadir', self.datadir)
        policy = read(self.installed(os.path.join(data, 'dbus-1', 'system.d', 'org.lkmd1.conf')))
        self.assertIn('<allow own="org.lkmd1"/>', policy)
        interfaces = self.dir_of('dbus-1', 'interfaces_dir',
                                 os.path.join(self.datadir, 'dbus-1', 'interfaces'))
        self.installed(os.path.join(interfaces, 'org.lkmd1.Manager.xml'))

    def test_polkit_man_completion_and_config(self):
        policy = read(self.installed(os.path.join(self.datadir, 'polkit-1', 'actions',
                                                  'org.lkmd1.policy')))
        self.assertIn('<action id="org.lkmd1.manage">', policy)
        for page in ('man8/lkmd.8', 'man8/lkmd-modprobe.8', 'man1/lkmctl.1', 'man5/lkmd.conf.5'):
            with self.subTest(page=page):
                self.installed(os.path.join(self.datadir, 'man', page))
        self.installed(os.path.join(self.datadir, 'bash-completion', 'completions', 'lkmctl'))
        self.installed(os.path.join(self.datadir, 'zsh', 'vendor-completions', '_lkmctl'))
        fish = pkg_config('fish', 'completionsdir', datadir=self.datadir) or os.path.join(
            self.datadir, 'fish', 'vendor_completions.d')
        self.installed(os.path.join(fish, 'lkmctl.fish'))
        self.installed(os.path.join(self.datadir, 'lkmd', 'udev', '80-drivers.rules'))
        self.installed(os.path.join(self.sysconfdir, 'lkmd', 'lkmd.conf'))


if __name__ == '__main__':
    unittest.main(verbosity=2)
