#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""lkmctl's bash, zsh and fish completions load without error and complete the commands, the
options and the values of lkmctl --help, the loaded modules where a module is expected, and the
module files of the kernel for load. Each shell runs the file from the tree with the module tree
and /proc/modules pointed at a fake one (this machine's kernel may have no modules at all)."""
import os
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, '..', '..', 'client')


def build_dir():
    return os.environ.get('LKMD_BUILD_DIR') or os.path.join(HERE, '..', '..', 'build')


def help_commands_and_options():
    """What lkmctl --help offers: the commands in its order, and every option word."""
    text = subprocess.run([os.path.join(build_dir(), 'client', 'lkmctl'), '--help'],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    commands = text.split('\nCommands:\n', 1)[1].split('\n\n', 1)[0]
    options = text.split('\nOptions:\n', 1)[1].split('\n\n', 1)[0]
    words = set()
    for line in options.splitlines():
        match = re.match(r'\s+(-\w)?\s*(--[a-z][a-z0-9-]*)?', line)
        if match:
            words.update(word for word in match.groups() if word)
    return [line.split()[0] for line in commands.splitlines()], sorted(words)


class FakeWorld:
    """A module tree with vfat, fat, dummy and nls_cp437 files, and a /proc/modules with vfat
    and fat loaded."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='lkmctl-completion-')
        self.modules = os.path.join(self.dir, 'lib')
        for path in ('kernel/fs/fat/vfat.ko.xz', 'kernel/fs/fat/fat.ko.zst',
                     'kernel/drivers/net/dummy.ko', 'kernel/fs/nls/nls_cp437.ko.gz',
                     'kernel/fs/nls/README', 'modules.dep'):
            os.makedirs(os.path.dirname(os.path.join(self.modules, path)), exist_ok=True)
            open(os.path.join(self.modules, path), 'w').close()
        self.proc_modules = os.path.join(self.dir, 'modules')
        with open(self.proc_modules, 'w') as f:
            f.write('vfat 24576 0 - Live 0x0\nfat 86016 1 vfat, Live 0x0\n')

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class CompletionTest(unittest.TestCase):
    def setUp(self):
        self.world = FakeWorld()
        self.addCleanup(self.world.remove)


class Bash(CompletionTest):
    SCRIPT = os.path.join(CLIENT, 'lkmctl.bash-completion')

    def complete(self, *words):
        """COMPREPLY for the command line words, the last being the word under the cursor."""
        script = (
            'source "$1"; shift\n'
            '__lkmctl_module_dir() { printf "%s\\n" "$MODULE_DIR"; }\n'
            '__lkmctl_proc_modules() { printf "%s\\n" "$PROC_MODULES"; }\n'
            'COMP_WORDS=(lkmctl "$@"); COMP_CWORD=$#\n'
            '_lkmctl; printf "%s\\n" "${COMPREPLY[@]}"\n')
        result = subprocess.run(['bash', '-c', script, 'bash', self.SCRIPT, *words],
                                env=dict(os.environ, MODULE_DIR=self.world.modules,
                                         PROC_MODULES=self.world.proc_modules),
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, '')
        return [line for line in result.stdout.splitlines() if line]

    def test_offers_exactly_the_commands_and_options_of_help(self):
        commands, options = help_commands_and_options()
        self.assertIn('monitor', commands)
        self.assertEqual(self.complete(''), commands)
        self.assertEqual(sorted(self.complete('-')), options)

    def test_completes_commands_options_and_their_values(self):
        self.assertEqual(self.complete('--json', 'req'), ['requests'])
        self.assertEqual(sorted(self.complete('--no')), ['--no-ask-password', '--no-legend',
                                                         '--no-pager'])
        self.assertEqual(self.complete('list', '--j'), ['--json'])
        self.assertEqual(self.complete('--json=s'), ['short'])
        # The value of -H is not taken for the command.
        self.assertEqual(self.complete('-H', 'root@web', 'sta'), ['status'])

    def test_completes_loaded_modules_where_a_module_is_expected(self):
        for verb in ('info', 'unload', 'pin', 'unpin'):
            with self.subTest(verb=verb):
                self.assertEqual(self.complete(verb, ''), ['vfat', 'fat'])
        self.assertEqual(self.complete('info', 'v'), ['vfat'])

    def test_completes_module_files_for_load(self):
        self.assertEqual(self.complete('load', ''), ['dummy', 'fat', 'nls_cp437', 'vfat'])
        self.assertEqual(self.complete('load', '--', ''), ['dummy', 'fat', 'nls_cp437', 'vfat'])
        self.assertEqual(self.complete('load', 'vfat', ''), [])
        self.assertEqual(self.complete('list', ''), [])

    def test_completes_module_files_for_explain_and_the_verb_of_policy(self):
        self.assertEqual(self.complete('explain', ''), ['dummy', 'fat', 'nls_cp437', 'vfat'])
        self.assertEqual(self.complete('policy', ''), ['suggest'])
        self.assertEqual(self.complete('policy', 'suggest', ''), [])

    def test_offers_nothing_without_proc_modules(self):
        os.unlink(self.world.proc_modules)
        self.assertEqual(self.complete('unload', ''), [])


class Fish(CompletionTest):
    SCRIPT = os.path.join(CLIENT, 'lkmctl.fish')

    def complete(self, line):
        """What fish offers for line, without the descriptions."""
        script = ('function __lkmctl_module_dir; echo $MODULE_DIR; end\n'
                  'function __lkmctl_proc_modules; echo $PROC_MODULES; end\n'
                  'source $argv[1]; complete -C $argv[2]\n')
        result = subprocess.run(['fish', '--no-config', '-c', script, self.SCRIPT, line],
                                env=dict(os.environ, MODULE_DIR=self.world.modules,
                                         PROC_MODULES=self.world.proc_modules),
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, '')
        return sorted(line.split('\t')[0] for line in result.stdout.splitlines())

    def test_completes_every_command_of_help(self):
        commands, _ = help_commands_and_options()
        self.assertEqual(self.complete('lkmctl '), sorted(commands))

    def test_completes_every_long_option_of_help(self):
        _, options = help_commands_and_options()
        offered = self.complete('lkmctl --')
        for option in options:
            if option.startswith('--'):
                with self.subTest(option=option):
                    self.assertIn(option, offered)

    def test_completes_loaded_modules_and_module_files(self):
        self.assertEqual(self.complete('lkmctl unload '), ['fat', 'vfat'])
        self.assertEqual(self.complete('lkmctl info v'), ['vfat'])
        self.assertEqual(self.complete('lkmctl load '), ['dummy', 'fat', 'nls_cp437', 'vfat'])
        self.assertEqual(self.complete('lkmctl explain '), ['dummy', 'fat', 'nls_cp437', 'vfat'])
        self.assertEqual(self.complete('lkmctl policy '), ['suggest'])
        self.assertEqual(self.complete('lkmctl --json='),
                         ['--json=off', '--json=pretty', '--json=short'])


class Zsh(CompletionTest):
    """An interactive zsh in a pseudo-terminal with compinit: a Tab completes a unique match."""

    def assertCompletes(self, line, completed):
        fpath = os.path.join(self.world.dir, 'fpath')
        os.makedirs(fpath, exist_ok=True)
        shutil.copyfile(os.path.join(CLIENT, 'lkmctl.zsh-completion'),
                        os.path.join(fpath, '_lkmctl'))
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe('zsh', ['zsh', '-f', '-i'], {
                'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'TERM': 'dumb',
                'HOME': self.world.dir})
        try:
            self.type(fd, ("PS1='> '; fpath=(%s $fpath); autoload -Uz compinit; compinit -u -D; "
                           "__lkmctl_module_dir() { print %s }; "
                           "__lkmctl_proc_modules() { print %s }; print -r re''ady\n")
                      % (fpath, self.world.modules, self.world.proc_modules), 'ready')
            screen = self.type(fd, line + '\t', completed)
            self.assertIn(completed, screen)
            self.assertNotIn('_lkmctl:', screen, 'zsh reported an error in the completion')
        finally:
            os.write(fd, b'\x03exit\n')
            os.close(fd)
            os.waitpid(pid, 0)

    @staticmethod
    def type(fd, keys, until):
        """Types keys and returns what zsh echoed, once until shows up (or after 15 s)."""
        os.write(fd, keys.encode())
        out = b''
        deadline = time.monotonic() + 15
        while until.encode() not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        return out.decode(errors='replace')

    def test_completes_a_command(self):
        self.assertCompletes('lkmctl sta', 'lkmctl status ')
        self.assertCompletes('lkmctl mon', 'lkmctl monitor ')

    def test_completes_a_loaded_module(self):
        self.assertCompletes('lkmctl unload vf', 'lkmctl unload vfat ')

    def test_completes_a_module_file_for_load(self):
        self.assertCompletes('lkmctl load nls', 'lkmctl load nls_cp437 ')

    def test_completes_explain_and_policy_suggest(self):
        self.assertCompletes('lkmctl explain nls', 'lkmctl explain nls_cp437 ')
        self.assertCompletes('lkmctl policy sug', 'lkmctl policy suggest ')

    def test_completes_option_values(self):
        self.assertCompletes('lkmctl --json=sh', 'lkmctl --json=short ')


if __name__ == '__main__':
    unittest.main(verbosity=2)
