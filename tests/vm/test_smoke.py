#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Smoke test of the VM harness itself: the guest, kmod, loop+vfat, D-Bus,
the agent and QMP, all without lkmd. If this fails, no VM suite can pass."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guest import CommandTimeout, Guest  # noqa: E402
from tap import Suite, comment, expect  # noqa: E402

HELLO = b"hello from the host\n"


def modules(g: Guest) -> set[str]:
    return {line.split()[0] for line in g.read_file("/proc/modules").splitlines()}


with Suite("smoke") as s:
    guest = Guest(build_dir=s.build_dir, name="smoke")
    guest.add_vfat_image("/images/vfat0.img", files={"hello.txt": HELLO})
    g = s.boot(guest)

    t0 = time.monotonic()
    for _ in range(10):
        g.check("true")
    comment(f"agent round trip: {(time.monotonic() - t0) * 100:.0f} ms")

    @s.scenario("/proc/modules exists and lists the 9p modules /init loaded")
    def _():
        mods = modules(g)
        expect({"9p", "9pnet_virtio"} <= mods, f"9p modules missing from {sorted(mods)}")

    @s.scenario("the module tree of uname -r is mounted read-only over 9p")
    def _():
        out = g.check("grep ' /lib/modules ' /proc/mounts; ls /lib/modules/$(uname -r)/modules.dep")
        expect(" 9p ro," in out or " 9p ro " in out, f"not a read-only 9p mount: {out}")
        expect(g.read_file("/proc/sys/kernel/modprobe").strip() == "/usr/sbin/modprobe",
               "kernel.modprobe is not /usr/sbin/modprobe")

    @s.scenario("lsmod, modprobe and rmmod in agent commands are kmod's, also behind env and timeout")
    def _():
        for tool in ("lsmod", "modprobe", "rmmod", "insmod", "modinfo"):
            path = g.check(f"readlink -f \"$(command -v {tool})\"").strip()
            expect(path == "/usr/bin/kmod", f"{tool} resolves to {path}, not kmod")
        for prefix in ("", "env ", "timeout 20 ", "setsid -w "):
            header = g.check(f"{prefix}lsmod").splitlines()[0]
            # busybox's lsmod prints "Used by    Not tainted".
            expect(header.split() == ["Module", "Size", "Used", "by"],
                   f"'{prefix}lsmod' is not kmod's lsmod: {header!r}")

    @s.scenario("kmod's modprobe dummy puts dummy in /proc/modules, rmmod dummy removes it")
    def _():
        expect("dummy" not in modules(g), "dummy loaded before the test")
        g.check("/usr/sbin/modprobe dummy")
        expect("dummy" in modules(g), "dummy not in /proc/modules after modprobe")
        g.check("rmmod dummy")
        expect("dummy" not in modules(g), "dummy still in /proc/modules after rmmod")

    @s.scenario("a vfat image mounts through loop (fat, vfat, loop autoloaded) and unmounts")
    def _():
        g.check("mkdir -p /mnt/vfat && mount -t vfat -o loop /images/vfat0.img /mnt/vfat")
        try:
            mods = modules(g)
            expect({"fat", "vfat", "loop"} <= mods, f"fat/vfat/loop not loaded: {sorted(mods)}")
            expect(g.read_file("/mnt/vfat/hello.txt").encode() == HELLO,
                   "hello.txt on the image has the wrong content")
            g.check("echo written-in-guest > /mnt/vfat/guest.txt && sync")
        finally:
            g.run("umount /mnt/vfat")
        expect(" /mnt/vfat " not in g.read_file("/proc/mounts"), "/mnt/vfat still mounted")
        rc, out = g.run("rmmod vfat")
        expect(rc == 0, f"rmmod vfat after umount failed: {out}")

    @s.scenario("dbus-daemon starts and dbus-send --system gets a reply")
    def _():
        g.start_dbus()
        out = g.check("dbus-send --system --print-reply --dest=org.freedesktop.DBus "
                      "/org/freedesktop/DBus org.freedesktop.DBus.ListNames")
        expect('string "org.freedesktop.DBus"' in out, f"unexpected ListNames reply: {out}")

    @s.scenario("the agent reports exit status and stderr, and survives a timeout")
    def _():
        rc, out = g.run("echo out; echo err >&2; exit 3")
        expect((rc, out) == (3, "out\nerr\n"), f"got {(rc, out)!r}")
        t = time.monotonic()
        try:
            g.run("echo before; sleep 100", timeout=2)
            raise AssertionError("sleep 100 with timeout=2 did not time out")
        except CommandTimeout as e:
            expect(e.output == "before\n", f"partial output lost: {e.output!r}")
        expect(time.monotonic() - t < 10, "the timeout took too long")
        expect(g.check("echo alive") == "alive\n", "agent unusable after a timeout")

    @s.scenario("spawn runs a background process whose log read_file can read")
    def _():
        p = g.spawn("echo started; exec sleep 300")
        expect(p.alive(), "spawned process is not running")
        expect(p.output() == "started\n", f"unexpected log: {p.output()!r}")
        p.kill()
        expect(not p.alive(), "spawned process survived SIGTERM")

    @s.scenario("QMP answers query-status")
    def _():
        status = g.qmp("query-status")
        expect(status.get("status") == "running", f"unexpected status {status}")
