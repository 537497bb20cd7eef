#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""lkmctl explain and lkmctl policy suggest against the real lkmd on the simulated kernel
(world.conf), over a private bus: what a name would do under the policy, the allow-list drop-in
made from the load history, that the drop-in is valid configuration, and that the history
outlives lkmd."""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busenv import BusEnv  # noqa: E402
from test_lkmctl import (E1000_DEVICE, E1000_MODALIAS, LkmctlTest,  # noqa: E402
                         add_unbound_pci_device, wait_until)

POLICY = """[Deny]
Requests = fs-cramfs
Modules = evil_blacklisted

[Rule]
Modules = loop
Requesters = user-namespace
Reason = no loop devices in containers
"""


def kernel_request(env, name):
    """lkmd-modprobe as the kernel runs it; its exit status."""
    helper_env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LKMD_REQUEST_SOCKET': env.request_socket,
                  'LKMD_KMOD_MODPROBE': '/bin/false'}
    return subprocess.run([env.helper_path(), '-q', '--', name], env=helper_env,
                          timeout=30).returncode


def allow_lines(drop_in):
    return [line for line in drop_in.splitlines() if line.startswith(('Allow=', '#Allow='))]


class PolicyTest(LkmctlTest):
    @classmethod
    def prepare(cls, env):
        os.makedirs(os.path.join(env.dir, 'etc', 'lkmd.conf.d'))
        with open(os.path.join(env.dir, 'etc', 'lkmd.conf'), 'w') as f:
            f.write(POLICY)

    @classmethod
    def conf(cls, name='lkmd.conf'):
        return os.path.join(cls.env.dir, 'etc', name)

    def output_of(self, *args, unprivileged=False):
        result = self.lkmctl(*args, unprivileged=unprivileged)
        self.assertSucceeds(result)
        return result.stdout


class Explain(PolicyTest):
    def test_an_alias_resolves_in_load_order_and_loads_for_everyone(self):
        out = self.output_of('explain', 'fs-vfat')
        self.assertIn("'fs-vfat' resolves to vfat.\n", out)
        lines = out.splitlines()
        steps = lines[lines.index('A load would insert, in this order:') + 1:][:2]
        self.assertEqual([line.split()[:2] for line in steps], [['fat', 'dependency'],
                                                                 ['vfat', 'requested']])
        self.assertIn('not loaded', steps[0])
        self.assertIn('No [Deny] pattern, rule or Allow= entry names it.', out)
        for who in ('root', 'uid 65534', 'uid 65534 in a user namespace', 'a device (hotplug)'):
            self.assertRegex(out, r'(?m)^  %s +loads$' % re.escape(who))
        self.assertIn('Unloaded when idle: 1min after nothing uses it', out)

    def test_a_denied_request_names_its_file_and_line(self):
        out = self.output_of('explain', 'fs-cramfs')
        self.assertIn('  %s:2: [Deny] Requests=fs-cramfs [enforce]\n' % self.conf(), out)
        self.assertRegex(out, r'(?m)^  root +refused: denied by policy \(Requests=fs-cramfs at '
                         + self.conf() + r':2\)$')

    def test_a_rule_for_containers_refuses_only_them_with_its_reason(self):
        out = self.output_of('explain', 'loop', unprivileged=True)  # open to everyone
        self.assertIn('%s:5: [Rule] Modules=loop Requesters=user-namespace '
                      '(no loop devices in containers) [enforce]' % self.conf(), out)
        self.assertRegex(out, r'(?m)^  uid 65534 in a user namespace +refused: .*'
                         r'no loop devices in containers$')
        self.assertRegex(out, r'(?m)^  root +loads$')
        self.assertRegex(out, r'(?m)^  uid 65534 +loads$')

    def test_an_unknown_name_resolves_to_nothing(self):
        out = self.output_of('explain', 'nosuch')
        self.assertIn("'nosuch' resolves to no module: no such module.\n", out)
        self.assertRegex(out, r'(?m)^  root +fails: no such module$')

    def test_explaining_loads_nothing(self):
        self.output_of('explain', 'dummy')
        self.assertNotIn('dummy', self.env.proc_modules())

    def test_json_carries_the_same(self):
        data = self.json_of('explain', 'fs-cramfs')
        self.assertEqual(data['request'], 'fs-cramfs')
        self.assertEqual(data['rules'][0]['where'], self.conf() + ':2')
        self.assertEqual(data['rules'][0]['mode'], 'enforce')
        self.assertEqual({j['requester']: j['verdict'] for j in data['judgements']}['root'],
                         'refused')

    def test_the_records_carry_the_documented_keys(self):
        explanation = self.env.busctl_json('Explain', 's', 'fs-vfat', unprivileged=True)[0]
        self.assertEqual(set(explanation), {'Request', 'Lookup', 'Modules', 'HiddenByBlacklist',
                                            'Steps', 'Rules', 'Judgements', 'IdleTimeoutUsec',
                                            'IdleTimeout'})
        step = explanation['Steps']['data'][0]
        self.assertEqual(set(step), {'Module', 'For', 'Role', 'State', 'Options',
                                     'InstallCommand'})
        judgement = explanation['Judgements']['data'][0]
        self.assertEqual(set(judgement), {'Requester', 'Verdict', 'Because'})
        rule = self.env.busctl_json('Explain', 's', 'fs-cramfs')[0]['Rules']['data'][0]
        self.assertEqual({key: value['data'] for key, value in rule.items()},
                         {'Where': self.conf() + ':2', 'Text': '[Deny] Requests=fs-cramfs',
                          'Reason': '', 'Mode': 'enforce'})
        suggestions = self.env.busctl_json('SuggestAllowList', unprivileged=True)[0]
        self.assertTrue(suggestions)
        self.assertEqual(set(suggestions[0]), {'Name', 'Source', 'Origin', 'Modules', 'Requester',
                                               'Count', 'FirstUsec', 'LastUsec', 'RefusedBy',
                                               'LoadedAs'})

    def test_a_bad_name_is_refused_by_lkmd_as_invalid(self):
        out = self.env.call('Explain', 'string:a/b', unprivileged=True)
        self.assertIn('org.lkmd1.Error.InvalidName', out.stderr)
        self.assertFailsWith(self.lkmctl('explain', 'a/b'),
                             "lkmctl: invalid module name 'a/b': contains '/'")


class Suggest(PolicyTest):
    """One world whose history grows through the steps, in order."""

    @classmethod
    def prepare(cls, env):
        super().prepare(env)
        add_unbound_pci_device(env, E1000_DEVICE, E1000_MODALIAS)  # coldplug loads e1000

    def suggest(self):
        return self.output_of('policy', 'suggest', unprivileged=True)

    def restart(self):
        self.env.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.env.daemon.wait(15), 0, self.env.log())
        self.env.start_daemon()

    def test_suggest_then_audit_then_restart(self):
        self.assertEqual(kernel_request(self.env, 'fs-vfat'), 0)
        self.assertEqual(kernel_request(self.env, 'fs-cramfs'), 1)  # refused: never suggested
        self.assertSucceeds(self.lkmctl('load', 'nls-cp437'))

        drop_in = self.suggest()
        self.assertTrue(drop_in.startswith('# An allow-list for lkmd'), drop_in)
        self.assertIn('\n[Policy]\nMode=audit\n', drop_in)
        # fs-vfat covers fat and vfat, the device's module is named, ext4_external was there.
        self.assertEqual(allow_lines(drop_in), ['Allow=e1000', 'Allow=ext4_external',
                                                'Allow=fs-vfat', 'Allow=nls-cp437'])
        self.assertIn('# fs-vfat: served 1 time (kernel)', drop_in)
        self.assertIn('modules fat, vfat', drop_in)
        self.assertIn('by device ' + E1000_DEVICE, drop_in)
        self.assertIn('# ext4_external: loaded now, not loaded by lkmd', drop_in)

        # What the policy refuses anyway stays commented out, with the reason.
        with open(self.conf('lkmd.conf.d/40-deny.conf'), 'w') as f:
            f.write('[Deny]\nModules = nls_cp437\n')
        self.assertSucceeds(self.lkmctl('reload'))
        drop_in = self.suggest()
        self.assertIn('#Allow=nls-cp437', allow_lines(drop_in))
        self.assertIn('# refused anyway: denied by policy (Modules=nls_cp437 at %s:2)'
                      % self.conf('lkmd.conf.d/40-deny.conf'), drop_in)

        # Saved as it is, the drop-in is configuration lkmd takes without a complaint.
        saved = self.conf('lkmd.conf.d/50-allow-list.conf')
        with open(saved, 'w') as f:
            f.write(drop_in)
        self.assertSucceeds(self.lkmctl('reload'))
        status = self.json_of('status')
        self.assertEqual(status['config_errors'], [], status)
        out = self.output_of('explain', 'fs-vfat')
        self.assertRegex(out, r'%s:\d+: \[Policy\] Allow=fs-vfat \[audit\]' % saved)
        # Audit: what the list misses still loads, and explain says it would be refused.
        self.assertRegex(self.output_of('explain', 'dummy'),
                         r'(?m)^  root +loads \(audit: would be refused\)')

        # The history outlives lkmd: the request log starts empty, the suggestion does not.
        self.assertEqual(kernel_request(self.env, 'fs-vfat'), 0)
        self.restart()
        requests = [row['Request']['data'] for row in self.env.busctl_json('ListRequests')[0]]
        self.assertNotIn('fs-vfat', requests)
        with open(os.path.join(self.env.state_dir, 'history')) as f:
            self.assertTrue(f.read().startswith('lkmd-history 1\n'))
        drop_in = self.suggest()
        self.assertIn('Allow=fs-vfat', allow_lines(drop_in))
        self.assertIn('# fs-vfat: served 2 times (kernel)', drop_in)
        self.assertIn('#Allow=nls-cp437', allow_lines(drop_in))



class SuggestEscapes(PolicyTest):
    def test_a_name_with_glob_characters_allows_that_name_only(self):
        # A modalias may hold '*': as a glob it would allow every such device.
        self.assertSucceeds(self.lkmctl('load', 'pci:v00008086d0000100Esv*sd*bc*sc*i*'))
        self.assertIn(r'Allow=pci:v00008086d0000100Esv\*sd\*bc\*sc\*i\*',
                      allow_lines(self.output_of('policy', 'suggest')))


class BrokenStateDir(unittest.TestCase):
    """A history lkmd cannot read or write costs a warning, never the service."""

    def setUp(self):
        self.env = BusEnv()
        self.addCleanup(self.env.stop)

    def lkmctl(self, *args):
        return self.env.run([self.env.lkmctl_path(), *args])

    def test_a_corrupt_history_is_ignored_with_a_warning(self):
        os.makedirs(os.path.join(self.env.dir, 'state'))
        with open(os.path.join(self.env.dir, 'state', 'history'), 'w') as f:
            f.write('\x00not a history\n')
        self.env.start()
        wait_until(lambda: 'not a load history' in self.env.log(), 'the warning')
        self.assertEqual(self.lkmctl('load', 'dummy').returncode, 0)
        out = self.lkmctl('policy', 'suggest')
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn('Allow=dummy', allow_lines(out.stdout))
        self.assertIsNone(self.env.daemon.poll())

    def test_an_unwritable_state_dir_is_logged_and_lkmd_serves_on(self):
        blocker = os.path.join(self.env.dir, 'not-a-dir')
        with open(blocker, 'w'):
            pass
        self.env.start(before_daemon=lambda env: None)
        self.env.daemon.send_signal(signal.SIGTERM)
        self.env.daemon.wait(15)
        self.env.start_daemon(['--state-dir=' + os.path.join(blocker, 'state')])
        self.assertEqual(self.lkmctl('load', 'dummy').returncode, 0)
        wait_until(lambda: 'Could not write' in self.env.log(), 'the warning')
        out = self.lkmctl('policy', 'suggest')
        self.assertIn('Allow=dummy', allow_lines(out.stdout))
        self.env.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.env.daemon.wait(15), 0, self.env.log())


if __name__ == '__main__':
    unittest.main(verbosity=2)
