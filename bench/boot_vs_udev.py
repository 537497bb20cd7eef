#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boot and coldplug in the systemd guest: lkmd against systemd-udevd's own module loading.

    python3 bench/boot_vs_udev.py --build-dir build [--rounds N] [--smp N] [--release R]

The loader Debian uses is systemd-udevd: systemd-udev-trigger replays the "add" uevents of the
devices present at boot and udevd's workers (one libkmod context each) run `kmod load` for every
MODALIAS (80-drivers.rules). lkmd's package replaces that rule and loads the drivers itself.

Two images are prepared from the release's root fs (rootfs.py) by two setup boots:

  udev  Debian's default: udev's 80-drivers.rules in force, kernel.modprobe is kmod's modprobe,
        lkmd not installed;
  lkmd  the same plus the tree's .deb installed with dpkg (its units enabled, kernel.modprobe
        set to lkmd-modprobe) and /etc/udev/rules.d/80-drivers.rules linked to lkmd's copy,
        which has no modalias line (lkmd's README).

Each round boots both (the order alternates) with the device set of bench/coldplug.py (13 NICs,
xhci with USB keyboard, tablet, mouse and storage, virtio rng/balloon/blk/scsi, ES1370,
i6300esb, and what -machine pc has). In each boot, a uevent logger started by the initramfs
before systemd (tests/vm/vmtools.c uevlog, SCHED_FIFO) stamps every kernel uevent with
CLOCK_MONOTONIC, the clock of systemd's timestamps. Once systemd is up and the module list has
been still for 5 s:

  loader       the loader's start: ExecMainStartTimestampMonotonic of systemd-udevd.service or
               lkmd.service
  done         the last "add" uevent of a module loaded at the end (the kernel sends it when
               the module's init has returned: the module is live) or "bind" uevent of a
               device bound at the end, whichever is later
  coldplug     done - loader: what the issue compares
  since boot   done itself (since the kernel started)
  multi-user   systemd-analyze's "multi-user.target reached after"

The final module sets and the sets of bound devices must be equal in both variants, else the
run fails. With --rest SECONDS the last round also measures the loaders at rest after the boot:
the context switches of every process of lkmd.service and systemd-udevd.service over the window
(lkmd once every candidate has been looked at and its workers have retired), and lkmd's
anonymous memory. Not a meson test: timings are never pass/fail.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "vm"))
sys.path.insert(0, str(REPO / "bench"))

from coldplug import qemu_args as device_args  # noqa: E402
from guest import GuestError  # noqa: E402
from rootfs import DEB_GUEST_PATH, HOST_RELEASE, RELEASES, Rootfs, ensure_deb, get_rootfs  # noqa
from systemd_guest import SystemdGuest  # noqa: E402

VMTOOLS = "/usr/bin/lkmd-vmtools"  # the initramfs starts its uevlog from this path
UEVLOG = "/var/log/lkmd-bench-uevents"
QUIET_SECONDS = 5
LOADER_UNITS = {"udev": "systemd-udevd.service", "lkmd": "lkmd.service"}
# Whose CPU time is printed per boot (systemd's accounting): where the boot's work went.
CPU_UNITS = ["lkmd.service", "systemd-udevd.service", "systemd-journald.service",
             "dbus.service", "systemd-udev-trigger.service"]
LKMD_RULES_LINK = "ln -sf /usr/share/lkmd/udev/80-drivers.rules /etc/udev/rules.d/80-drivers.rules"


def guest_for(args, rootfs: Rootfs, tmp: Path, name: str, **kwargs) -> SystemdGuest:
    extra = device_args(tmp)
    if args.smp > 1:
        extra += ["-smp", str(args.smp)]
    g = SystemdGuest(rootfs, build_dir=args.build_dir, name=name, qemu_args=extra,
                     boot_timeout=600, **kwargs)
    g.add_c_program(VMTOOLS, REPO / "tests" / "vm" / "vmtools.c")
    return g


def prepare(args, base: Rootfs, deb: Path, tmp: Path) -> dict[str, Rootfs]:
    """The two images, each a qcow2 over the one before (see the module doc)."""
    images = {}
    for variant, setup in (
            ("udev", "rm -f /etc/udev/rules.d/80-drivers.rules"),
            ("lkmd", f"dpkg -i {DEB_GUEST_PATH} >/dev/null && {LKMD_RULES_LINK} && "
                     "systemctl is-enabled lkmd.service")):
        image = tmp / f"{variant}.qcow2"
        backing = images.get("udev", base)
        with guest_for(args, backing, tmp, f"bench-boot-setup-{variant}", keep_overlay=image,
                       deb=deb if variant == "lkmd" else None) as g:
            g.wait_running(timeout=900)
            g.check(setup, timeout=600)
            g.check("sync", timeout=120)
        images[variant] = Rootfs(release=base.release, image=image, packages=base.packages,
                                 debootstrap_seconds=0, built_now=[])
        print(f"prepared the {variant} image", flush=True)
    return images


def normalized(devpath: str) -> str:
    """SCSI hosts are numbered in the order their drivers register them, which differs from boot
    to boot (ata_piix's two ports, usb-storage): compare the devices, not the numbers."""
    return re.sub(r"(host|target)\d+(:\d+)*|/\d+:\d+:\d+:\d+", r"\1N", devpath)


def last_stamps(log: str) -> tuple[dict[str, int], dict[str, int], int]:
    """(module -> its last "add" stamp, devpath -> its last "bind" stamp, overflows)."""
    live, bound, overflows = {}, {}, 0
    for line in log.splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3:
            continue
        usec, action, devpath = int(parts[0]), parts[1], parts[2]
        if action == "OVERFLOW":
            overflows += 1
        elif action == "add" and devpath.startswith("/module/"):
            live[devpath[len("/module/"):]] = usec
        elif action == "bind":
            bound[devpath] = usec
    return live, bound, overflows


def measure(args, image: Rootfs, variant: str, tmp: Path, n: int) -> dict:
    with guest_for(args, image, tmp, f"bench-boot-{variant}-{n}",
                   append=f"lkmd.uevlog={UEVLOG}") as g:
        state = g.wait_running(timeout=900)
        g.check("udevadm settle --timeout=300", timeout=320)
        g.check(f"n=$(wc -l < /proc/modules); q=0; while [ $q -lt {QUIET_SECONDS * 2} ]; do "
                f"sleep 0.5; c=$(wc -l < /proc/modules); "
                f"if [ $c = $n ]; then q=$((q+1)); else q=0; n=$c; fi; done", timeout=600)
        modules = {line.split()[0] for line in g.read_file("/proc/modules").splitlines()}
        bound = set(g.check("for d in $(find /sys/devices -name driver -type l); do "
                            "echo ${d%/driver}; done").split())
        bound = {normalized(d[len("/sys"):]) for d in bound}
        start = int(g.check(f"systemctl show -p ExecMainStartTimestampMonotonic --value "
                            f"{LOADER_UNITS[variant]}").strip() or 0)
        analyze = g.check("systemd-analyze time")
        cpu = {u: int(g.check(f"systemctl show -p CPUUsageNSec --value {u}").strip() or 0) / 1e9
               for u in CPU_UNITS if g.run(f"systemctl cat {u} >/dev/null 2>&1")[0] == 0}
        log = g.read_file(UEVLOG)
        if args.keep:
            keep = args.keep / f"{variant}-{n}"
            keep.mkdir(parents=True, exist_ok=True)
            (keep / "uevents").write_text(log)
            (keep / "journal").write_text(g.check("journalctl -b -o short-monotonic --no-pager",
                                                  timeout=120))
            (keep / "blame").write_text(analyze + g.check("systemd-analyze blame --no-pager"))
            if variant == "lkmd":
                (keep / "requests.json").write_text(g.check("lkmctl --json requests", timeout=120))
        coldplug_line = ""
        if variant == "lkmd":
            coldplug_line = g.check("journalctl -u lkmd -o cat --no-pager | "
                                    "grep -m1 'Coldplug:' || true").strip()
            if not g.check("systemctl is-active lkmd.service || true").startswith("active"):
                raise GuestError("lkmd.service is not active:\n" + g.journal("-u lkmd"))
        rest = measure_rest(g, variant, args.rest) if args.rest and n == args.rounds - 1 else {}
    live, binds, overflows = last_stamps(log)
    if not live or start == 0:
        raise GuestError(f"{variant}: no module uevents logged ({len(log)} bytes) or no start "
                         f"time of {LOADER_UNITS[variant]}")
    live_at = max((t for m, t in live.items() if m in modules), default=0)
    bound_at = max((t for d, t in binds.items() if normalized(d) in bound), default=0)
    done = max(live_at, bound_at)
    m = re.search(r"\.target reached after (.+?) in userspace", analyze)
    return {"coldplug": (done - start) / 1e6, "since_boot": done / 1e6,
            "loader_start": start / 1e6, "multi_user": parse_span(m.group(1)) if m else None,
            "modules": modules, "bound": bound, "overflows": overflows,
            "state": state.splitlines()[0], "coldplug_line": coldplug_line,
            "last": "module" if live_at >= bound_at else "bind", "rest": rest, "cpu": cpu}


SWITCHES = ("for p in $(cat /sys/fs/cgroup/system.slice/{unit}/cgroup.procs); do "
            "for t in /proc/$p/task/*; do grep -E '^(non)?voluntary_ctxt_switches' $t/status; "
            "done; done 2>/dev/null | awk '{{s+=$2}} END {{print s+0}}'")


def measure_rest(g: SystemdGuest, variant: str, seconds: int) -> dict:
    """The loaders at rest after the boot: context switches of every process of lkmd.service
    and systemd-udevd.service over `seconds`, and lkmd's anonymous memory. At rest means lkmd
    has looked at every candidate once and its workers have retired (30 s after their last
    job); udevd's idle workers are gone by then too."""
    if variant == "lkmd":
        g.check("i=0; while lkmctl --json list | grep -q 'not yet looked at'; do "
                "[ $i -ge 40 ] && exit 1; sleep 5; i=$((i+1)); done", timeout=260)
        pid = g.check("systemctl show -p MainPID --value lkmd.service").strip()
        g.check(f"i=0; until grep -q '^Threads:[[:space:]]*1$' /proc/{pid}/status; do "
                f"[ $i -ge 240 ] && exit 1; sleep 0.5; i=$((i+1)); done; sleep 2", timeout=160)
    else:
        g.check("sleep 60", timeout=90)
    units = {"lkmd": "lkmd.service", "udevd": "systemd-udevd.service"}
    if variant == "udev":
        del units["lkmd"]
    script = "; ".join(f"echo {name} $({SWITCHES.format(unit=unit)})"
                       for name, unit in units.items())
    before = dict(line.split() for line in g.check(script).splitlines())
    g.check(f"sleep {seconds}", timeout=seconds + 30)
    after = dict(line.split() for line in g.check(script).splitlines())
    result = {f"{name}_wakeups_per_min": (int(after[name]) - int(before[name])) * 60 / seconds
              for name in units}
    if variant == "lkmd":
        # Candidates lkmd names as in use by something outside the module graph (its first
        # reason; one that a device or a holder keeps too is not polled).
        mods = json.loads(g.check("lkmctl --json list"))
        result["lkmd_in_use"] = sorted(
            f"{m['name']} ({m.get('kept_because')})" for m in mods
            if m.get("autoclean") and not m.get("pinned") and
            re.match(r"in use|provides live|network links", m.get("kept_because") or ""))
        pid = g.check("systemctl show -p MainPID --value lkmd.service").strip()
        rollup = g.check(f"cat /proc/{pid}/smaps_rollup")
        m = re.search(r"^Anonymous:\s+(\d+)", rollup, re.M)
        result["lkmd_anonymous_kib"] = int(m.group(1)) if m else None
    return result


def parse_span(text: str) -> float:
    """systemd's "1min 2.345s" / "812ms" into seconds."""
    units = {"min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    return sum(float(v) * units[u] for v, u in re.findall(r"([\d.]+)(min|ms|us|s)", text))


def fmt(values: list[float | None]) -> str:
    return ", ".join("-" if v is None else f"{v:.2f}" for v in values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--smp", type=int, default=1, help="guest vCPUs (TCG threads)")
    ap.add_argument("--release", choices=RELEASES, default=HOST_RELEASE)
    ap.add_argument("--rest", type=int, default=0, metavar="SECONDS",
                    help="in the last round, also measure the loaders at rest after the boot "
                    "over this window: wakeups a minute, lkmd's anonymous memory")
    ap.add_argument("--keep", type=Path, help="save each boot's uevent log, journal and "
                    "systemd-analyze blame here")
    args = ap.parse_args()

    deb = ensure_deb(args.release)
    base = get_rootfs(deb, args.release)
    results: dict[str, list[dict]] = {"udev": [], "lkmd": []}
    failed = False
    with tempfile.TemporaryDirectory(prefix="lkmd-bench-boot-") as t:
        tmp = Path(t)
        images = prepare(args, base, deb, tmp)
        for r in range(args.rounds):
            order = ["udev", "lkmd"] if r % 2 == 0 else ["lkmd", "udev"]
            res = {v: measure(args, images[v], v, tmp, r) for v in order}
            for v in order:
                results[v].append(res[v])
            u, k = res["udev"], res["lkmd"]
            print(f"round {r + 1}: coldplug udev {u['coldplug']:.2f} s, lkmd "
                  f"{k['coldplug']:.2f} s (lkmd/udev {k['coldplug'] / u['coldplug']:.2f}); "
                  f"since boot udev {u['since_boot']:.2f}, lkmd {k['since_boot']:.2f}; "
                  f"loader started at udev {u['loader_start']:.2f}, lkmd "
                  f"{k['loader_start']:.2f}; multi-user udev {fmt([u['multi_user']])}, lkmd "
                  f"{fmt([k['multi_user']])}; last event: udev {u['last']}, lkmd {k['last']}; "
                  f"uevent overflows {u['overflows']}/{k['overflows']}", flush=True)
            print(f"  lkmd: {k['coldplug_line']}", flush=True)
            for v in order:
                print(f"  CPU s in the {v} boot: " + ", ".join(
                    f"{unit.split('.')[0]} {sec:.2f}" for unit, sec in res[v]["cpu"].items()),
                    flush=True)
            if k["rest"] or u["rest"]:
                print(f"  at rest: udev boot {u['rest']}; lkmd boot {k['rest']}", flush=True)
            if u["modules"] != k["modules"] or u["bound"] != k["bound"]:
                failed = True
                print(f"  MODULE SETS DIFFER: only udev {sorted(u['modules'] - k['modules'])}, "
                      f"only lkmd {sorted(k['modules'] - u['modules'])}; BOUND DEVICES: only "
                      f"udev {sorted(u['bound'] - k['bound'])}, only lkmd "
                      f"{sorted(k['bound'] - u['bound'])}", flush=True)
            else:
                print(f"  same {len(u['modules'])} modules and {len(u['bound'])} bound devices",
                      flush=True)

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"\n{date}, {args.release} systemd guest, qemu TCG -smp {args.smp}, host "
          f"{platform.node()} ({os.cpu_count()} CPUs, load average {load}), "
          f"{args.rounds} round(s)")
    print("| figure | udev median s (runs) | lkmd median s (runs) | lkmd/udev, median of the "
          "rounds' ratios |\n|---|---|---|---|")
    for key, what in (("coldplug", "loader start to all live and bound"),
                      ("since_boot", "kernel start to all live and bound"),
                      ("multi_user", "default target reached (userspace)")):
        us = [x[key] for x in results["udev"]]
        ks = [x[key] for x in results["lkmd"]]
        if None in us or None in ks:
            print(f"| {what} | {fmt(us)} | {fmt(ks)} | - |")
            continue
        ratios = [k / u for u, k in zip(us, ks)]
        print(f"| {what} | {statistics.median(us):.2f} ({fmt(us)}) | "
              f"{statistics.median(ks):.2f} ({fmt(ks)}) | {statistics.median(ratios):.2f} "
              f"({fmt(ratios)}) |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
