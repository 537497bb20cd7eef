#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One packaging step (a build in a release's build root, lintian, autopkgtest) as a TAP test
point for meson, its output as TAP comments.

    step.py NAME -- COMMAND ARGS...

A machine that cannot run it (not root, no debootstrap or autopkgtest) skips, as the VM suites
do; LKMD_VM_REQUIRE=1 (.ci/run) turns that skip into a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

NEEDS = ["debootstrap", "autopkgtest", "unshare", "chroot"]


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    name, argv = sys.argv[1], sys.argv[3:]
    missing = [tool for tool in NEEDS
               if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}")]
    why = ("needs root (debootstrap, chroot)" if os.geteuid() != 0
           else f"{', '.join(missing)} not installed (scripts/install-deps)" if missing else None)
    if why:
        print(f"1..0 # SKIP {name}: {why}", flush=True)
        return 1 if os.environ.get("LKMD_VM_REQUIRE") == "1" else 0
    print("1..1", flush=True)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, errors="replace")
    for line in p.stdout:
        print(f"# {line.rstrip()}", flush=True)
    rc = p.wait()
    took = f"{time.monotonic() - t0:.0f} s"
    print(f"{'ok' if rc == 0 else 'not ok'} 1 - {name} ({took}{'' if rc == 0 else f', exit {rc}'})",
          flush=True)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
