#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The product carries no test code, and the functional core links no system library.

- /usr/sbin/lkmd offers no --fake-kernel and holds no simulator symbol: the simulated kernel
  lives in tests/sim (lkmd-sim), built from the same daemon code.
- daemon/core (policy, plans, idle decisions, parsers, the registry) neither includes nor calls
  libkmod, libudev or libsystemd: those are the adapters' business.
"""
import os
import re
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, '..', '..')
BUILD = os.environ.get('LKMD_BUILD_DIR') or os.path.join(SOURCE, 'build')
SYSTEM_SYMBOL = re.compile(r'^\s*U (kmod_|udev_|sd_)\w+', re.M)


def nm(*args):
    out = subprocess.run(['nm', *args], capture_output=True, text=True, check=True)
    return out.stdout


class ProductTest(unittest.TestCase):
    def test_lkmd_offers_no_simulator(self):
        lkmd = os.path.join(BUILD, 'daemon', 'lkmd')
        help_text = subprocess.run([lkmd, '--help'], capture_output=True, text=True,
                                   check=True).stdout
        self.assertNotIn('fake', help_text.lower())
        symbols = [line for line in nm('-C', lkmd).splitlines() if 'Fake' in line]
        self.assertEqual(symbols, [], 'simulator symbols in lkmd')
        refused = subprocess.run([lkmd, '--fake-kernel=/dev/null'], capture_output=True,
                                 text=True)
        self.assertEqual(refused.returncode, 2, refused.stderr)

    def test_the_simulator_is_a_test_program_of_its_own(self):
        sim = os.path.join(BUILD, 'tests', 'sim', 'lkmd-sim')
        self.assertTrue(os.access(sim, os.X_OK), sim)
        self.assertTrue([line for line in nm('-C', sim).splitlines() if 'FakeKernel' in line])

    def test_the_core_calls_no_system_library(self):
        core = os.path.join(BUILD, 'daemon', 'liblkmd-core.a')
        calls = SYSTEM_SYMBOL.findall(nm('-u', core))
        self.assertEqual(calls, [], 'the core calls libkmod, libudev or libsystemd')
        core_dir = os.path.join(SOURCE, 'daemon', 'core')
        for name in sorted(os.listdir(core_dir)):
            with open(os.path.join(core_dir, name)) as source:
                includes = re.findall(r'#include <(libkmod|libudev|systemd/)[^>]*>', source.read())
            self.assertEqual(includes, [], name)


if __name__ == '__main__':
    unittest.main(verbosity=2)
