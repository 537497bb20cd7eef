#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The foundation on Debian's real kernel: lkmd and lkmctl load and unload through libkmod."""

from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from guest import Guest  # noqa: E402
from tap import Suite, comment, expect  # noqa: E402

NOBODY = "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups"


def loaded(g: Guest) -> set[str]:
    return {line.split()[0] for line in g.read_file("/proc/modules").splitlines() if line}


def lkmctl(g: Guest, args: str, as_nobody: bool = False) -> tuple[int, str]:
    return g.run(f"{NOBODY + ' ' if as_nobody else ''}lkmctl {args} 2>&1", timeout=120)


def bus_error(g: Guest, method: str, name: str) -> str:
    """The D-Bus error name lkmd answers, via dbus-send (lkmctl shows sentences, not names)."""
    rc, out = g.run("dbus-send --system --print-reply --dest=org.lkmd1 /org/lkmd1 "
                    f"org.lkmd1.Manager.{method} string:'{name}' 2>&1")
    expect(rc != 0, f"{method}('{name}') succeeded: {out}")
    return out


def main() -> None:
    with Suite("foundation") as s:
        guest = Guest(build_dir=s.build_dir, name="foundation")
        guest.add_lkmd()
        guest.add_binary("/usr/bin/setpriv", "/usr/bin/setpriv")  # busybox's cannot change uid
        guest.add_vfat_image("/images/vfat0.img")
        # dummy makes dummy0 at load unless told not to; a link of its kind keeps it (see the
        # scenario "... while one of its links exists").
        guest.add_text("/etc/modprobe.d/dummy.conf", "options dummy numdummies=0\n")
        g = s.boot(guest)
        g.start_lkmd()

        @s.scenario("lkmctl status reaches lkmd over the system bus")
        def _():
            rc, out = lkmctl(g, "status")
            expect(rc == 0, out)
            expect("lkmd " in out and re.search(r"Modules: \d+ loaded", out), out)

        @s.scenario("lkmctl load dummy puts dummy in /proc/modules with origin bus")
        def _():
            expect("dummy" not in loaded(g), "dummy was loaded before the test")
            rc, out = lkmctl(g, "load dummy")
            expect(rc == 0, out)
            expect("Inserted dummy." in out, out)
            expect("dummy" in loaded(g), "dummy is not in /proc/modules")
            rc, out = lkmctl(g, "list")
            expect(rc == 0, out)
            row = next((line.split() for line in out.splitlines()
                        if line.split()[:1] == ["dummy"]), None)
            expect(row is not None and row[1] == "bus", f"no 'dummy bus' row in:\n{out}")

        @s.scenario("lkmctl unload dummy is refused while one of its links exists")
        def _():
            # A link holds no reference on dummy: delete_module() would succeed and delete it.
            g.check("ip link add d0 type dummy")
            try:
                rc, out = lkmctl(g, "unload dummy")
                expect(rc != 0 and "provides live dummy links" in out, out)
                expect("dummy" in loaded(g) and g.exists("/sys/class/net/d0"),
                       "dummy or its link d0 went")
            finally:
                g.run("ip link del d0")

        @s.scenario("lkmctl unload dummy removes it from the kernel")
        def _():
            rc, out = lkmctl(g, "unload dummy")
            expect(rc == 0, out)
            expect("dummy" not in loaded(g), "dummy is still in /proc/modules")

        @s.scenario("lkmctl load vfat reports fat and vfat inserted")
        def _():
            before = loaded(g)
            expect("vfat" not in before and "fat" not in before, "fat/vfat loaded already")
            rc, out = lkmctl(g, "load vfat")
            expect(rc == 0, out)
            expect("Inserted fat.\nInserted vfat." in out, out)
            expect({"fat", "vfat"} <= loaded(g), "fat/vfat not in /proc/modules")
            rc, out = lkmctl(g, "--json info fat")
            expect(rc == 0 and '"vfat"' in out, f"fat's holders should name vfat: {out}")

        @s.scenario("lkmctl load of a module that does not exist fails with NoSuchModule")
        def _():
            rc, out = lkmctl(g, "load no_such_module_anywhere")
            expect(rc == 4, f"exit status {rc} (lkmctl(1): 4 is no such module): {out}")
            expect("lkmctl: cannot load 'no_such_module_anywhere': no such module" in out, out)
            out = bus_error(g, "LoadModule", "no_such_module_anywhere")
            expect("org.lkmd1.Error.NoSuchModule" in out, out)

        @s.scenario("lkmctl unload vfat while a vfat image is mounted fails with InUse")
        def _():
            g.check("mkdir -p /mnt/v && mount -t vfat -o loop /images/vfat0.img /mnt/v")
            try:
                rc, out = lkmctl(g, "unload vfat")
                expect(rc == 1, f"exit status {rc}: {out}")
                expect("lkmctl: cannot unload 'vfat': module is in use" in out, out)
                out = bus_error(g, "UnloadModule", "vfat")
                expect("org.lkmd1.Error.InUse" in out, out)
                expect("vfat" in loaded(g), "vfat was unloaded under a mounted filesystem")
            finally:
                g.check("umount /mnt/v")
            rc, out = lkmctl(g, "unload vfat")
            expect(rc == 0, f"after umount: {out}")
            expect("vfat" not in loaded(g), "vfat still loaded after unload")

        @s.scenario("a dependency still held cannot be unloaded; once free it can")
        def _():
            lkmctl(g, "load vfat")
            rc, out = lkmctl(g, "unload fat")
            expect(rc == 1 and "in use by vfat" in out, out)
            expect(lkmctl(g, "unload vfat")[0] == 0, "unload vfat")
            rc, out = lkmctl(g, "unload fat")
            expect(rc == 0, out)
            expect("fat" not in loaded(g), "fat still loaded")

        @s.scenario("bad names, built-ins and absent modules get their own errors")
        def _():
            for name, error in [("a" * 56, "InvalidName"), ("fs-a;b", "InvalidName"),
                                ("8250", "Builtin"), ("dummy", "NotLoaded"),
                                ("no_such_module_anywhere", "NoSuchModule")]:
                out = bus_error(g, "UnloadModule", name)
                expect(f"org.lkmd1.Error.{error}" in out, f"{name}: {out}")
            rc, out = lkmctl(g, "unload 8250")
            expect(rc == 1 and "built into the kernel" in out, out)
            rc, out = lkmctl(g, "status")
            expect(rc == 0, f"lkmd stopped serving: {out}")

        @s.scenario("an unprivileged user can list but cannot load or unload")
        def _():
            rc, out = lkmctl(g, "list", as_nobody=True)
            expect(rc == 0 and "MODULE" in out, out)
            rc, out = lkmctl(g, "load dummy", as_nobody=True)
            expect(rc == 1 and "permission denied" in out, out)
            expect("dummy" not in loaded(g), "an unprivileged caller loaded dummy")
            g.check("lkmctl load dummy")
            rc, out = lkmctl(g, "unload dummy", as_nobody=True)
            expect(rc == 1 and "permission denied" in out, out)
            expect("dummy" in loaded(g), "an unprivileged caller unloaded dummy")
            g.check("lkmctl unload dummy")

        @s.scenario("lkmd logged each insertion with the requested name")
        def _():
            log = g.lkmd_log()
            expect("Inserted 'fat' for 'vfat' (bus)" in log, log)
            comment(f"lkmd log: {len(log.splitlines())} lines")


if __name__ == "__main__":
    main()
