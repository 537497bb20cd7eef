#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""End-to-end latency of a kernel module request, in a qemu guest on Debian's kernel.

    python3 bench/request_latency.py --build-dir build [--rounds N]

Each round unloads vfat and fat, then times `mount -t vfat -o loop IMG /mnt` inside the guest
(a static timer around the mount, so the agent's round trip is not counted) with
/proc/sys/kernel/modprobe set to, in turn:

  lkmd   /usr/sbin/lkmd-modprobe, lkmd running: helper -> socket -> lkmd -> libkmod, with
         the requester read from lkmd's tracefs instance and /proc (tracefs mounted)
  untraced  the same lkmd with --tracefs pointing nowhere: what reading the requester costs
  kmod   /usr/sbin/modprobe: kmod's modprobe, what distributions ship
  floor  a static no-op helper that exits 0 at once: the mount then fails (ENODEV), and its
         time is the floor any helper pays (usermode-helper spawn, loop setup, the mount call)

The order of the variants rotates every round; lkmd is restarted when the variant needs the
other tracing setting (the restart is not timed). loop and the nls modules stay loaded, so every
mount makes exactly one request (fs-vfat), which loads fat and vfat. Not a meson test.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "vm"))

from guest import KMOD_MODPROBE, LKMD_MODPROBE, Guest, GuestError  # noqa: E402

VMTOOLS = "/usr/bin/lkmd-vmtools"
NOOP = "/usr/lib/lkmd-bench/noop-modprobe"
IMAGE = "/images/vfat0.img"
# The smallest helper there is: no libc, one exit syscall.
NOOP_SOURCE = """\
void _start(void) { __asm__ volatile("mov $60, %eax\\n\\txor %edi, %edi\\n\\tsyscall"); }
"""
VARIANTS = {"lkmd": LKMD_MODPROBE, "untraced": LKMD_MODPROBE, "kmod": KMOD_MODPROBE,
            "floor": NOOP}
TRACEFS = "/sys/kernel/tracing"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def one_mount(g: Guest, variant: str) -> float:
    """Unload vfat and fat, point kernel.modprobe at the variant's helper, time one mount."""
    rc, out = g.run(
        "for m in vfat fat; do grep -q \"^$m \" /proc/modules && rmmod $m; done; "
        "grep -qE '^(vfat|fat) ' /proc/modules && { echo 'vfat/fat still loaded'; exit 90; }; "
        f"echo {VARIANTS[variant]} > /proc/sys/kernel/modprobe; "
        f"{VMTOOLS} timeit mount -t vfat -o loop {IMAGE} /mnt/b; st=$?; "
        "umount /mnt/b 2>/dev/null; exit $st", timeout=180)
    m = re.search(r"^@@timeit (\d+) (\d+)$", out, re.M)
    if rc == 90 or not m:
        raise GuestError(f"{variant}: round failed (exit {rc}): {out}")
    ok = m.group(2) == "0"
    if ok != (variant != "floor"):
        raise GuestError(f"{variant}: mount {'succeeded' if ok else 'failed'} unexpectedly: {out}")
    return int(m.group(1)) / 1000.0  # ms


def start_lkmd(g: Guest, traced: bool) -> None:
    g.stop_lkmd()
    g.start_lkmd(["--coldplug=no", f"--tracefs={TRACEFS if traced else '/nonexistent'}"])
    # Steady state: at start a worker compiles the policy for kmod from the whole module index
    # (a quarter of a second under TCG), and the first request would queue behind it.
    g.check("sleep 2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, required=True, help="meson build dir with lkmd")
    ap.add_argument("--rounds", type=int, default=30, help="measured rounds (default 30)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first (default 2)")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    g = Guest(build_dir=args.build_dir, name="bench-request-latency")
    g.add_lkmd()
    g.add_util_linux_mount()
    g.add_c_program(VMTOOLS, REPO / "tests" / "vm" / "vmtools.c")
    g.add_c_program(NOOP, NOOP_SOURCE, cflags=["-nostdlib", "-fno-pie", "-no-pie"])
    g.add_vfat_image(IMAGE, size_mib=1)
    with g:
        print(f"# kernel {g.kernel.package} {g.kernel.version}, booted in {g.boot_seconds:.1f} s",
              flush=True)
        g.check(f"mount -t tracefs tracefs {TRACEFS}")
        traced = True
        start_lkmd(g, traced)
        # The first mount loads loop and the nls modules, which then stay.
        g.check(f"mkdir -p /mnt/b && mount -t vfat -o loop {IMAGE} /mnt/b && umount /mnt/b")
        mods = g.modules()
        if not {"loop", "nls_cp437", "nls_ascii"} <= mods:
            print(f"# warning: loop/nls not all loaded: {sorted(mods)}", flush=True)
        g.check(f"{NOOP}")  # the no-op helper runs

        names = list(VARIANTS)
        times: dict[str, list[float]] = {v: [] for v in names}
        for r in range(args.warmup + args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for v in order:
                if v in ("lkmd", "untraced") and traced != (v == "lkmd"):
                    traced = v == "lkmd"
                    start_lkmd(g, traced)
                ms = one_mount(g, v)
                if r >= args.warmup:
                    times[v].append(ms)
            if r >= args.warmup:
                print(f"# round {r - args.warmup + 1}: " + "  ".join(
                    f"{v} {times[v][-1]:.1f}" for v in names) + " ms", flush=True)
        g.set_modprobe(KMOD_MODPROBE)
        expected_nls = {"nls_cp437", "nls_ascii"} <= g.modules()

    med = {v: statistics.median(times[v]) for v in names}
    print()
    print(f"request latency: mount -t vfat -o loop with fat/vfat unloaded (one fs-vfat request), "
          f"{args.rounds} rounds, {datetime.date.today()}, kernel {g.kernel.version}, "
          f"host {platform.machine()} {os.cpu_count()} CPUs, qemu TCG, host load average "
          f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after")
    print()
    print("| helper | median ms | p90 ms | min ms | max ms | median / kmod |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for v in names:
        t = times[v]
        print(f"| {v} | {med[v]:.1f} | {percentile(t, 90):.1f} | {min(t):.1f} | {max(t):.1f} | "
              f"{med[v] / med['kmod']:.2f} |")
    print()
    print(f"lkmd / kmod = {med['lkmd'] / med['kmod']:.2f}, floor / kmod = "
          f"{med['floor'] / med['kmod']:.2f}; above the floor: lkmd {med['lkmd'] - med['floor']:.1f} ms, "
          f"kmod {med['kmod'] - med['floor']:.1f} ms")
    print(f"reading the requester (tracefs and /proc): lkmd / untraced = "
          f"{med['lkmd'] / med['untraced']:.2f}, {med['lkmd'] - med['untraced']:+.1f} ms per request")
    if not expected_nls:
        print("warning: the nls modules were not loaded at the end: some mounts made more requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
