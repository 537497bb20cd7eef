#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Show lkmd at work on a real kernel, step by step (run by scripts/demo).

Boots Debian's kernel in qemu with lkmd and lkmctl from the build dir, then
runs lkmctl commands and prints each one with its output. Exits non-zero if
a step does not behave as lkmd promises.
"""

import argparse
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guest import Guest, GuestError  # noqa: E402
from kernel import KernelUnavailable  # noqa: E402

# (command, expected exit status, text the output must contain, why)
STEPS = [
    ("lkmctl status", 0, "", "is the daemon up, and what does it see?"),
    ("lkmctl load dummy", 0, "Inserted dummy.", "ask lkmd over D-Bus to load a module"),
    ("grep -w dummy /proc/modules", 0, "dummy", "the kernel agrees"),
    ("lkmctl list", 0, "bus", "dummy is listed with origin 'bus': it came through D-Bus"),
    ("lkmctl info dummy", 0, "dummy", "what lkmd knows about one module"),
    ("lkmctl load vfat", 0, "Inserted vfat.", "dependencies come first: fat, then vfat"),
    ("lkmctl unload vfat", 0, "", "unload what we loaded"),
    ("lkmctl unload fat", 0, "", ""),
    ("lkmctl unload dummy", 0, "", ""),
    ("lkmctl load no_such_module", 1, "lkmctl: ", "a failure is one sentence on stderr, exit status 1"),
    ("echo /usr/sbin/lkmd-modprobe > /proc/sys/kernel/modprobe", 0, "",
     "from now on the kernel's module requests go to lkmd's helper"),
    ("mkdir -p /mnt/v && mount -t vfat -o loop /images/vfat0.img /mnt/v && echo mounted", 0,
     "mounted", "no vfat loaded: the kernel asks for loop, fs-vfat and the codepages"),
    ("lkmctl requests", 0, "fs-vfat", "every request the kernel made, and what lkmd did"),
    ("lkmctl info vfat", 0, "kernel", "origin 'kernel', trigger 'fs-vfat'"),
    ("lkmctl unload vfat", 1, "in use", "never unload what is in use: the image is mounted"),
    ("umount /mnt/v && sleep 7 && grep -cw vfat /proc/modules", 1, "0",
     "unused now: after its idle timeout (2 s here) lkmd removes what it loaded on demand"),
]


def say(text: str = "") -> None:
    print(text, flush=True)


def indent(text: str) -> str:
    return textwrap.indent(text.rstrip("\n"), "    ") if text.strip() else "    (no output)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, required=True, help="meson build dir with lkmd and lkmctl")
    args = ap.parse_args()

    say("==> Fetching Debian's kernel (cached after the first run)")
    guest = Guest(build_dir=args.build_dir, name="demo")
    try:
        guest.add_lkmd()
        guest.add_vfat_image("/images/vfat0.img")
        # A short idle timeout, so that the demo shows autoclean without waiting a minute.
        guest.add_text("/etc/lkmd/lkmd.conf", "[Autoclean]\nIdleTimeout=2s\n")
        with guest as g:
            say(f"    {g.kernel.package} {g.kernel.version}, booted in qemu in {g.boot_seconds:.1f} s")
            say(f"==> Starting the system bus and lkmd (uname -r: {g.kernel.kver})")
            g.start_lkmd(["--config-dir=/etc/lkmd"])
            say(f"    lkmd owns org.lkmd1 (pid {g.lkmd.pid})")
            failures = 0
            for cmd, want_rc, want_text, why in STEPS:
                say()
                say(f"==> {cmd}" + (f"    # {why}" if why else ""))
                t0 = time.monotonic()
                rc, out = g.run(cmd, timeout=60)
                say(indent(out))
                ms = (time.monotonic() - t0) * 1000
                if rc == want_rc and want_text in out:
                    note = f"exit status {rc}, as expected" if rc else "ok"
                    say(f"    ({note}, {ms:.0f} ms)")
                else:
                    failures += 1
                    say(f"    !! expected exit status {want_rc}"
                        + (f" and {want_text!r} in the output" if want_text else "")
                        + f", got exit status {rc}")
            say()
            if failures:
                say(f"==> {failures} step(s) did not go as expected; lkmd's log:")
                say(indent(g.lkmd_log()))
                return 1
            say("==> Done: lkmd loaded and unloaded modules on a real kernel, over D-Bus and for")
            say("    the kernel's own requests, and cleaned up what nobody used any more.")
            return 0
    except KernelUnavailable as e:
        say(f"!! cannot get Debian's kernel: {e}")
    except GuestError as e:
        say(f"!! {e}")
        say("--- kernel console (tail) ---")
        say(guest.console_tail(20))
    return 1


if __name__ == "__main__":
    sys.exit(main())
