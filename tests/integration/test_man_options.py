#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The man pages keep up with the programs: every long option that lkmd --help and lkmctl --help
print is described in the OPTIONS section of their page, every option described there exists,
and every lkmctl command is in lkmctl(1)'s synopsis and COMMANDS section."""
import os
import re
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MAN_DIR = os.path.join(HERE, '..', '..', 'man')



def build_dir():
    return os.environ.get('LKMD_BUILD_DIR') or os.path.join(HERE, '..', '..', 'build')


def help_text(*path):
    out = subprocess.run([os.path.join(build_dir(), *path), '--help'], capture_output=True,
                         text=True, timeout=30, env=dict(os.environ, LC_ALL='C.UTF-8'))
    if out.returncode != 0:
        raise AssertionError('%s --help failed (%d): %s' % (path[-1], out.returncode, out.stderr))
    return out.stdout


def help_options(text):
    """The long options a --help text offers: those at the start of an indented line."""
    options = set()
    for line in text.splitlines():
        stripped = line.strip()
        if line.startswith(' ') and stripped.startswith('-'):
            first = re.match(r'(?:-\w\s+)?(--[a-z][a-z0-9-]*)', stripped)
            if first:
                options.add(first.group(1)[2:])
    return options


def help_commands(text):
    """The commands of lkmctl --help: the first word of each line of its "Commands:" block."""
    lines = text.splitlines()
    start = lines.index('Commands:') + 1
    commands = []
    for line in lines[start:]:
        if not line.strip():
            break
        commands.append(line.split()[0])
    return commands


def read_page(name):
    with open(os.path.join(MAN_DIR, name)) as f:
        return f.read()


def section(page, title):
    """The text of a top-level '# TITLE' section of an scdoc page."""
    match = re.search(r'^# %s\n(.*?)(?=^# |\Z)' % re.escape(title), page, re.M | re.S)
    if match is None:
        raise AssertionError('no "# %s" section' % title)
    return match.group(1)


def described_options(options_section):
    """Long options that head an entry of an OPTIONS section: '*--name*' or '*--name=*_ARG_'
    on an unindented line, possibly after '*-h*, '."""
    described = set()
    for line in options_section.splitlines():
        if line.startswith(('\t', ' ')):
            continue
        described.update(re.findall(r'\*--([a-z][a-z0-9-]*)=?\*', line))
    return described


class ManPagesDescribeEveryOption(unittest.TestCase):
    PROGRAMS = {
        'lkmd': (('daemon', 'lkmd'), 'lkmd.8.scd'),
        'lkmctl': (('client', 'lkmctl'), 'lkmctl.1.scd'),
    }

    def test_help_parsers_see_the_options(self):
        # Guards the test itself: a help format change must not make it vacuous.
        self.assertEqual(help_options('  -h --help   Help\n     --json  JSON\n--not-this\n'),
                         {'help', 'json'})
        self.assertEqual(described_options('*-h*, *--help*\n\tSee *--json*.\n*--x=*_N_\n'),
                         {'help', 'x'})

    def test_every_option_in_help_is_described_in_the_man_page(self):
        for program, (path, page) in self.PROGRAMS.items():
            offered = help_options(help_text(*path))
            self.assertIn('help', offered, program)
            described = described_options(section(read_page(page), 'OPTIONS'))
            for option in sorted(offered):
                with self.subTest(program=program, option=option):
                    self.assertIn(option, described,
                                  '--%s is in %s --help but not in OPTIONS of %s'
                                  % (option, program, page))

    def test_every_option_described_in_the_man_page_exists(self):
        for program, (path, page) in self.PROGRAMS.items():
            offered = help_options(help_text(*path))
            described = described_options(section(read_page(page), 'OPTIONS'))
            for option in sorted(described):
                with self.subTest(program=program, option=option):
                    self.assertIn(option, offered,
                                  '--%s is in OPTIONS of %s but not in %s --help'
                                  % (option, page, program))


def help_short_options(text):
    """The short options a --help text offers: "-x" at the start of an indented line."""
    return {m.group(1) for m in re.finditer(r'(?m)^ +(-[A-Za-z])\b', text)}


def described_short_options(options_section):
    return set(re.findall(r'(?m)^\*(-[A-Za-z])\*', options_section))


class LkmctlPageDescribesShortOptionsAndExitStatuses(unittest.TestCase):
    def test_every_short_option_in_help_is_described_and_the_other_way_round(self):
        offered = help_short_options(help_text('client', 'lkmctl'))
        self.assertTrue({'-h', '-H', '-M', '-j', '-l', '-q'} <= offered, offered)
        described = described_short_options(section(read_page('lkmctl.1.scd'), 'OPTIONS'))
        self.assertEqual(described, offered)

    def test_every_exit_status_lkmctl_uses_is_documented(self):
        with open(os.path.join(HERE, '..', '..', 'client', 'bus_failure.h')) as f:
            used = {int(code) for code in re.findall(r'kExit\w+ = (\d+);', f.read())}
        self.assertEqual(used, {0, 1, 2, 3, 4, 7})
        documented = {int(code) for code in
                      re.findall(r'(?m)^\*(\d+)\*$', section(read_page('lkmctl.1.scd'),
                                                            'EXIT STATUS'))}
        self.assertEqual(documented, used)


class LkmctlPageDescribesEveryCommand(unittest.TestCase):
    def test_help_lists_commands(self):
        commands = help_commands(help_text('client', 'lkmctl'))
        self.assertIn('list', commands)
        self.assertIn('requests', commands)

    def test_every_command_is_in_the_synopsis_and_described(self):
        page = read_page('lkmctl.1.scd')
        synopsis = section(page, 'SYNOPSIS')
        described = section(page, 'COMMANDS')
        for command in help_commands(help_text('client', 'lkmctl')):
            with self.subTest(command=command):
                name = re.escape(command)
                self.assertTrue(re.search(r'\*lkmctl\* \[_OPTIONS_\] \*%s\*' % name, synopsis),
                                '%s is not in the SYNOPSIS of lkmctl.1.scd' % command)
                self.assertTrue(re.search(r'(?m)^\*%s\*' % name, described),
                                '%s is not described in COMMANDS of lkmctl.1.scd' % command)


if __name__ == '__main__':
    unittest.main(verbosity=2)
