#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""org.lkmd1.Manager over a real dbus-daemon, served by the real lkmd on a simulated kernel."""
import os
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv, HERE  # noqa: E402

ENV = None


def setUpModule():
    global ENV
    ENV = BusEnv().start()


def tearDownModule():
    if ENV is not None:
        if os.environ.get('LKMD_TEST_VERBOSE'):
            print(ENV.log(), file=sys.stderr)
        ENV.stop()


class BusApiTest(unittest.TestCase):
    def assertError(self, result, name, phrase=None):
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn('Error ' + name + ':', result.stderr)
        if phrase is not None:
            self.assertIn(phrase, result.stderr)

    def assertDaemonAlive(self):
        self.assertIsNone(ENV.daemon.poll(), 'lkmd died:\n' + ENV.log())
        ENV.list_modules()

    def test_load_by_alias_inserts_dependencies_first_and_records_origin(self):
        inserted = ENV.busctl_json('LoadModule', 's', 'fs-vfat')[0]
        self.assertEqual(inserted, ['fat', 'vfat'])
        modules = ENV.list_modules()
        for name in ('fat', 'vfat'):
            self.assertEqual(modules[name]['Origin'], 'bus')
            self.assertEqual(modules[name]['Trigger'], 'fs-vfat')
            self.assertGreater(modules[name]['LoadedAt'], 0)
        self.assertEqual(modules['fat']['Holders'], ['vfat'])
        self.assertIn('vfat', ENV.proc_modules())
        self.wait_for_signal("string \"vfat\"\n   string \"bus\"")

    def test_loading_what_is_loaded_or_builtin_inserts_nothing(self):
        ENV.busctl_json('LoadModule', 's', 'nls_cp437')
        self.assertEqual(ENV.busctl_json('LoadModule', 's', 'nls_cp437')[0], [])
        self.assertEqual(ENV.busctl_json('LoadModule', 's', 'unix')[0], [])
        self.assertEqual(ENV.busctl_json('LoadModule', 's', 'net-pf-1')[0], [])

    def test_modalias_loads_every_module_it_resolves_to(self):
        alias = 'usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00'
        inserted = sorted(ENV.busctl_json('LoadModule', 's', alias)[0])
        self.assertEqual(inserted, ['uas', 'usb_storage'])
        self.assertEqual(ENV.list_modules()['uas']['Trigger'], alias)

    def test_blacklist_applies_to_aliases_but_not_to_names(self):
        self.assertError(ENV.call('LoadModule', 'string:pci:v0000DEADd00000001sv0sd0bc0sc0i0'),
                         'org.lkmd1.Error.NoSuchModule')
        self.assertEqual(ENV.busctl_json('LoadModule', 's', 'evil_blacklisted')[0],
                         ['evil_blacklisted'])

    def test_modules_loaded_by_others_are_external(self):
        module = ENV.list_modules()['ext4_external']
        self.assertEqual(module['Origin'], 'external')
        self.assertEqual(module['LoadedAt'], 0)

    def test_unload_removes_module_and_signals_it(self):
        ENV.busctl_json('LoadModule', 's', 'dummy')
        ENV.busctl_json('UnloadModule', 's', 'dummy')
        self.assertNotIn('dummy', ENV.proc_modules())
        self.assertNotIn('dummy', ENV.list_modules())
        self.wait_for_signal("string \"dummy\"\n   string \"request\"")

    def test_unload_refuses_module_held_by_another(self):
        ENV.busctl_json('LoadModule', 's', 'vfat')
        self.assertError(ENV.call('UnloadModule', 'string:fat'), 'org.lkmd1.Error.InUse',
                         'in use by vfat')
        self.assertIn('fat', ENV.proc_modules())

    def test_unload_refuses_module_with_references(self):
        ENV.busctl_json('LoadModule', 's', 'busy')
        self.assertError(ENV.call('UnloadModule', 'string:busy'), 'org.lkmd1.Error.InUse',
                         'refcnt 1')
        self.assertIn('busy', ENV.proc_modules())

    def test_unload_refuses_driver_bound_to_a_device_despite_refcnt_zero(self):
        ENV.busctl_json('LoadModule', 's', 'e1000')
        self.assertEqual(ENV.list_modules()['e1000']['RefCount'], 0)
        self.assertError(ENV.call('UnloadModule', 'string:e1000'), 'org.lkmd1.Error.InUse',
                         '0000:00:03.0')
        self.assertIn('e1000', ENV.proc_modules())

    def test_get_module_reports_drivers_and_bound_devices(self):
        ENV.busctl_json('LoadModule', 's', 'e1000')
        module = {k: v['data'] for k, v in ENV.busctl_json('GetModule', 's', 'e1000')[0].items()}
        self.assertEqual(module['Drivers'], ['pci:e1000'])
        self.assertEqual(module['Devices'], ['0000:00:03.0'])
        self.assertEqual(module['Origin'], 'bus')

    def test_get_module_of_builtin_says_builtin(self):
        module = ENV.busctl_json('GetModule', 's', 'unix')[0]
        self.assertEqual(module['State']['data'], 'builtin')

    def test_errors_have_their_own_names(self):
        self.assertError(ENV.call('LoadModule', 'string:no_such_module'),
                         'org.lkmd1.Error.NoSuchModule', 'no such module')
        self.assertError(ENV.call('UnloadModule', 'string:unix'), 'org.lkmd1.Error.Builtin')
        self.assertError(ENV.call('UnloadModule', 'string:never_loaded'), 'org.lkmd1.Error.NotLoaded')
        self.assertError(ENV.call('GetModule', 'string:never_loaded'), 'org.lkmd1.Error.NotLoaded')
        self.assertError(ENV.call('GetModule', 'string:no_such_module'),
                         'org.lkmd1.Error.NoSuchModule')
        self.assertError(ENV.call('LoadModule', 'string:broken'), 'org.lkmd1.Error.LoadFailed',
                         "No such device (see dmesg)")
        self.assertNotIn('broken', ENV.proc_modules())
        self.assertDaemonAlive()

    def test_bad_names_are_refused_and_daemon_keeps_serving(self):
        bad = {
            '': 'name is empty',
            'a' * 56: 'longer than 55 bytes',
            '../../etc/passwd': "contains '/'",
            'fs-a\x01b': 'control characters',
            'fs-\u00e9t\u00e9': 'non-ASCII',
            'fs-x;reboot': 'not allowed',
            'fs-$(id)': 'not allowed',
            'pci:' + 'v' * 5000: 'longer than 4095',
        }
        for name, phrase in bad.items():
            for method in ('LoadModule', 'UnloadModule', 'GetModule'):
                with self.subTest(name=name, method=method):
                    self.assertError(ENV.call(method, 'string:' + name),
                                     'org.lkmd1.Error.InvalidName', phrase)
        # libkmod cuts a name at its first '.': delete_module() would get "e1000" while lkmd's
        # checks looked at /sys/module/e1000.x, which does not exist. Where a module is expected,
        # aliases are welcome but a '.' never is.
        ENV.busctl_json('LoadModule', 's', 'e1000')
        for name in ('e1000.x', '.', '..', 'vfat.ko'):
            for method in ('UnloadModule', 'SetModulePinned', 'GetModule'):
                with self.subTest(name=name, method=method):
                    args = ['string:' + name] + (['boolean:true'] if method == 'SetModulePinned'
                                                 else [])
                    self.assertError(ENV.call(method, *args), 'org.lkmd1.Error.InvalidName',
                                     "'.' (libkmod would cut the name there)")
        self.assertIn('e1000', ENV.proc_modules())
        self.assertError(ENV.call('LoadModule', 'string:' + 'a' * 55),
                         'org.lkmd1.Error.NoSuchModule')
        self.assertDaemonAlive()

    def test_members_that_expect_a_module_take_its_aliases(self):
        ENV.busctl_json('LoadModule', 's', 'fs-vfat')
        module = ENV.busctl_json('GetModule', 's', 'fs-vfat')[0]
        self.assertEqual(module['Name']['data'], 'vfat')
        self.assertEqual(ENV.busctl_json('GetModule', 's', 'net-pf-1')[0]['Name']['data'], 'unix')
        ENV.busctl_json('SetModulePinned', 'sb', 'fs-vfat', 'true')
        self.assertTrue(ENV.list_modules()['vfat']['Pinned'])
        ENV.busctl_json('SetModulePinned', 'sb', 'fs-vfat', 'false')
        ENV.busctl_json('LoadModule', 's', 'dummy')
        ENV.busctl_json('UnloadModule', 's', 'rtnl-link-dummy')
        self.assertNotIn('dummy', ENV.proc_modules())

    def test_an_alias_of_several_modules_is_refused_naming_them(self):
        alias = 'usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00'
        for method, args in (('GetModule', []), ('UnloadModule', []),
                             ('SetModulePinned', ['boolean:true'])):
            with self.subTest(method=method):
                self.assertError(ENV.call(method, 'string:' + alias, *args),
                                 'org.lkmd1.Error.AmbiguousName',
                                 "'%s' stands for several modules: uas, usb_storage" % alias)

    def test_pin_says_whether_the_module_is_unknown_absent_or_not_lkmds(self):
        for name, error in (('no_such_module', 'NoSuchModule'), ('never_loaded', 'NotLoaded'),
                            ('ext4_external', 'External'), ('unix', 'Builtin')):
            with self.subTest(name=name):
                self.assertError(ENV.call('SetModulePinned', 'string:' + name, 'boolean:true'),
                                 'org.lkmd1.Error.' + error)

    def test_every_answered_request_is_signalled_with_its_record(self):
        ENV.busctl_json('LoadModule', 's', 'char-major-10-237')
        self.wait_for_signal('member=RequestAnswered')
        self.wait_for_signal('string "char-major-10-237"')
        signals = ENV.signals()
        answered = signals.index('string "char-major-10-237"')
        self.assertLess(signals.index('string "loop"\n   string "bus"'), answered,
                        'ModuleLoaded comes before the answer')
        for key in ('Request', 'Origin', 'Device', 'Time', 'DurationUsec', 'Result', 'Message',
                    'Modules'):
            self.assertIn('string "%s"' % key, signals[answered - 200:])

    def test_status_properties_describe_the_running_daemon(self):
        props = self.properties()
        self.assertGreater(props['StartedAt'], 0)
        self.assertEqual(props['HotplugMode'], 'load')
        self.assertEqual(props['IdleTimeoutUsec'], 60 * 1000 * 1000)
        self.assertEqual(props['ConfigFiles'], [])
        self.assertEqual(props['ConfigErrors'], [])
        self.assertTrue(props['ModprobeHelper'].endswith('/lkmd-modprobe'))
        self.assertFalse(props['KernelModprobeIsLkmd'])
        self.assertEqual(props['StaticUsermodeHelper'], [])
        ENV.call('LoadModule', 'string:no_such_module')
        self.assertGreaterEqual(self.properties()['RequestCounts']['not-found'], 1)

    def test_kernel_modprobe_is_read_from_procfs_each_time(self):
        path = os.path.join(ENV.dir, 'proc', 'sys', 'kernel', 'modprobe')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('/sbin/modprobe\n')
        self.assertEqual(self.properties()['KernelModprobe'], '/sbin/modprobe')

    @staticmethod
    def properties():
        out = ENV.run(['busctl', '--system', '--json=short', 'call', 'org.lkmd1', '/org/lkmd1',
                       'org.freedesktop.DBus.Properties', 'GetAll', 's', 'org.lkmd1.Manager'])
        assert out.returncode == 0, out.stderr
        import json
        return {k: v['data'] for k, v in json.loads(out.stdout)['data'][0].items()}

    def test_wrong_argument_types_are_refused(self):
        self.assertError(ENV.call('LoadModule', 'int32:7'),
                         'org.freedesktop.DBus.Error.InvalidArgs')
        self.assertDaemonAlive()

    def test_load_options_are_refused_when_a_key_repeats(self):
        # Each option once: however long the dictionary, the loop reads two entries.
        entries = ['Autoclean', 'b', 'true'] * 20000
        out = ENV.run(['busctl', '--system', 'call', 'org.lkmd1', '/org/lkmd1',
                       'org.lkmd1.Manager', 'LoadModuleEx', 'sa{sv}', 'dummy',
                       str(len(entries) // 3), *entries])
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn('option Autoclean is given more than once', out.stderr)
        self.assertNotIn('dummy', ENV.proc_modules())
        self.assertDaemonAlive()

    def test_bus_stays_responsive_while_a_module_init_runs(self):
        # "slow" spends 1.5 s in its init; ListModules must be answered before that load ends.
        load = subprocess.Popen(
            ['busctl', '--system', 'call', 'org.lkmd1', '/org/lkmd1', 'org.lkmd1.Manager',
             'LoadModule', 's', 'slow'], env=ENV.env, stdout=subprocess.PIPE, text=True)
        time.sleep(0.2)
        ENV.list_modules()
        self.assertIsNone(load.poll(), 'the load finished before ListModules was answered')
        self.assertEqual(load.wait(30), 0)
        self.assertIn('slow', ENV.proc_modules())

    def test_concurrent_loads_of_one_module_all_succeed(self):
        procs = [subprocess.Popen(['busctl', '--system', 'call', 'org.lkmd1', '/org/lkmd1',
                                   'org.lkmd1.Manager', 'LoadModule', 's', 'loop'],
                                  env=ENV.env, stdout=subprocess.PIPE, text=True)
                 for _ in range(8)]
        results = [p.communicate(timeout=30) for p in procs]
        self.assertTrue(all(p.returncode == 0 for p in procs), results)
        self.assertEqual(ENV.proc_modules().count('loop'), 1)

    def test_unprivileged_caller_can_read_but_not_load_or_unload(self):
        self.assertIn('ext4_external', ENV.list_modules(unprivileged=True))
        got = ENV.busctl_json('GetModule', 's', 'ext4_external', unprivileged=True)[0]
        self.assertEqual(got['Origin']['data'], 'external')
        version = ENV.run(['busctl', '--system', 'get-property', 'org.lkmd1', '/org/lkmd1',
                           'org.lkmd1.Manager', 'Version'], unprivileged=True)
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertError(ENV.call('LoadModule', 'string:dummy', unprivileged=True),
                         'org.freedesktop.DBus.Error.AccessDenied')
        self.assertNotIn('dummy', ENV.proc_modules())
        self.assertError(ENV.call('UnloadModule', 'string:ext4_external', unprivileged=True),
                         'org.freedesktop.DBus.Error.AccessDenied')
        self.assertIn('ext4_external', ENV.proc_modules())
        for method, args in [('LoadModule', ['string:dummy']),
                             ('SetModulePinned', ['string:ext4_external', 'boolean:true']),
                             ('Reload', [])]:
            with self.subTest(method=method):
                out = ENV.call(method, *args, unprivileged=True)
                self.assertError(out, 'org.freedesktop.DBus.Error.AccessDenied')
                # No polkit on this bus: the refusal says what would have let the caller in.
                self.assertIn("polkit's authorization for org.lkmd1.manage; polkit is not running",
                              out.stderr)
        self.assertNotIn('dummy', ENV.proc_modules())
        # A name lkmd would refuse is refused as such before anyone is asked for authorization.
        self.assertError(ENV.call('LoadModule', 'string:../evil', unprivileged=True),
                         'org.lkmd1.Error.InvalidName')

    def test_the_shipped_bus_policy_lets_only_root_own_the_name(self):
        # The bus denies by default, as Debian's system bus does; units/org.lkmd1.conf is the
        # only policy file. lkmd (root) owns the name; nobody else may even queue for it.
        request = ['dbus-send', '--system', '--print-reply', '--dest=org.freedesktop.DBus',
                   '/org/freedesktop/DBus', 'org.freedesktop.DBus.RequestName',
                   'string:org.lkmd1', 'uint32:0']
        self.assertError(ENV.run(request, unprivileged=True),
                         'org.freedesktop.DBus.Error.AccessDenied')
        queued = ENV.run(request)
        self.assertEqual(queued.returncode, 0, queued.stderr)
        self.assertIn('uint32 2', queued.stdout)  # in the queue behind lkmd: root may

    def test_introspection_matches_the_interface_file(self):
        out = ENV.run(['busctl', '--system', 'introspect', '--xml-interface', 'org.lkmd1',
                       '/org/lkmd1'])
        self.assertEqual(out.returncode, 0, out.stderr)
        live = interface_of(ET.fromstring(out.stdout), 'org.lkmd1.Manager')
        with open(os.path.join(HERE, '..', '..', 'protocol', 'org.lkmd1.Manager.xml')) as f:
            shipped = interface_of(ET.fromstring(f.read()), 'org.lkmd1.Manager')
        self.assertEqual(live, shipped)

    def wait_for_signal(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in ENV.signals():
                return
            time.sleep(0.05)
        self.fail('no signal with %r; got:\n%s' % (text, ENV.signals()))


def interface_of(root, name):
    """A comparable form of one interface: members with their args and annotations, sorted."""
    iface = next(i for i in root.iter('interface') if i.get('name') == name)
    members = []
    for member in iface:
        args = tuple((a.get('name'), a.get('type'), a.get('direction', 'out' if member.tag ==
                      'method' else None)) for a in member.iter('arg'))
        annotations = tuple(sorted((a.get('name'), a.get('value'))
                                   for a in member.iter('annotation')))
        members.append((member.tag, member.get('name'), member.get('type'),
                        member.get('access'), args, annotations))
    return sorted(members, key=repr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
