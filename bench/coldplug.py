#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Coldplug in a qemu guest on Debian's kernel: lkmd's parallel coldplug against a sequential
`modprobe` per device, over the same devices from the same boot state.

    python3 bench/coldplug.py --build-dir build [--rounds N] [--smp N]

Each round boots the same guest twice (the order alternates between rounds):

  lkmd  dbus-daemon is started first; then lkmd (default options: --coldplug=yes,
        --hotplug=load) is spawned. Its coldplug loads the drivers of the devices present at
        boot in parallel; the devices that appear behind them (USB devices once xhci_pci is
        in, HID and input devices once usbhid is in ...) come as uevents and are loaded as
        hotplug.
  kmod  a shell loop does what a sequential loader without udevd's workers does: for every
        device under /sys/bus/*/devices or /sys/class/*/ (input devices are class devices)
        with a modalias, no driver bound and not tried yet,
        `modprobe -b -q MODALIAS` (kmod's; -b applies the blacklist, as udev does), one at a
        time; passes repeat until no new device has shown up for 3 s.

Measured: from the moment the loader starts (lkmd: the wall clock in the guest just before it
is spawned; kmod: /proc/uptime when the loop starts) to the insertion of the last module (lkmd:
the timestamp of its last "Inserted" log line; kmod: /proc/uptime after the last modprobe that
changed /proc/modules). The
final sets of loaded modules must be equal, else the run fails. lkmd's own "Coldplug:" line
(its coldplug walk only) is printed as well. Not a meson test.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "vm"))

from guest import LKMD_LOG, Guest, GuestError  # noqa: E402

QUIET_SECONDS = 3
NOW = "/usr/bin/bench-now"  # busybox date has no %N
NOW_SOURCE = r"""#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    printf("%lld.%09ld\n", (long long)t.tv_sec, t.tv_nsec);
    return 0;
}
"""
NICS = [("e1000", 0x6), ("e1000", 0x7), ("e1000", 0x8), ("virtio-net-pci", 0x9),
        ("virtio-net-pci", 0xA), ("virtio-net-pci", 0xB), ("rtl8139", 0xC), ("pcnet", 0xD),
        ("ne2k_pci", 0xE), ("i82559er", 0xF), ("vmxnet3", 0x10), ("tulip", 0x11),
        ("e1000e", 0x12)]


def qemu_args(tmp: Path) -> list[str]:
    stick, blk = tmp / "stick.img", tmp / "blk.img"
    for img in (stick, blk):
        with open(img, "wb") as f:
            f.truncate(8 << 20)
    args = [
        "-device", "qemu-xhci,id=xhci,addr=0x5",
        "-device", "usb-kbd,bus=xhci.0", "-device", "usb-tablet,bus=xhci.0",
        "-device", "usb-mouse,bus=xhci.0",
        "-drive", f"if=none,id=stick,format=raw,file={stick}",
        "-device", "usb-storage,bus=xhci.0,drive=stick",
        "-device", "virtio-rng-pci,addr=0x13", "-device", "virtio-balloon-pci,addr=0x14",
        "-audiodev", "none,id=snd0", "-device", "ES1370,audiodev=snd0,addr=0x15",
        "-device", "i6300esb,addr=0x16",
        "-drive", f"if=none,id=blk,format=raw,file={blk}",
        "-device", "virtio-blk-pci,drive=blk,addr=0x17",
        "-device", "virtio-scsi-pci,addr=0x18",
    ]
    for i, (driver, slot) in enumerate(NICS):
        args += ["-netdev", f"user,id=bn{i}",
                 "-device", f"{driver},netdev=bn{i},addr=0x{slot:x},romfile="]
    return args


# The kmod loop, in dash builtins but for modprobe itself (a fork costs ~ms under TCG, and the
# loop's own overhead should not count against kmod). Devices are tried once each (by their
# /sys/bus path); a device bound meanwhile (the second e1000 once the first loaded e1000) is
# skipped, as eudev and lkmd skip it.
KMOD_LOOP = r"""
count() { n=0; while read -r _; do n=$((n+1)); done < /proc/modules; echo $n; }
read -r start _ < /proc/uptime; last=$start; calls=0; idle=0; ndev=0
tried=" "; c0=$(count)
while [ $idle -lt @IDLE@ ]; do
    new=0
    for d in /sys/bus/*/devices/* /sys/class/*/*; do
        [ -f "$d/modalias" ] || continue
        [ -e "$d/driver" ] && continue
        case $tried in *" $d "*) continue ;; esac
        tried="$tried$d "
        new=1; ndev=$((ndev+1))
        read -r alias < "$d/modalias"
        /usr/sbin/modprobe -b -q "$alias"
        calls=$((calls+1))
        c=$(count)
        if [ "$c" != "$c0" ]; then c0=$c; read -r last _ < /proc/uptime; fi
    done
    if [ $new = 0 ]; then idle=$((idle+1)); sleep 0.5; else idle=0; fi
done
echo "@@kmod start=$start last=$last calls=$calls devices=$ndev"
"""


def boot(args: argparse.Namespace, tmp: Path, name: str) -> Guest:
    extra = qemu_args(tmp)
    if args.smp > 1:
        extra += ["-smp", str(args.smp)]
    g = Guest(build_dir=args.build_dir, name=name, qemu_args=extra, memory_mib=1024)
    g.add_lkmd(helper=False)
    g.add_c_program(NOW, NOW_SOURCE)
    g.__enter__()
    return g


def run_kmod(args: argparse.Namespace, tmp: Path) -> dict:
    g = boot(args, tmp, "bench-coldplug-kmod")
    try:
        before = g.modules()
        out = g.check(KMOD_LOOP.replace("@IDLE@", str(QUIET_SECONDS * 2)), timeout=900)
        m = re.search(r"@@kmod start=(\S+) last=(\S+) calls=(\d+) devices=(\d+)", out)
        if not m:
            raise GuestError(f"no result from the kmod loop: {out[-2000:]}")
        return {"seconds": float(m.group(2)) - float(m.group(1)), "calls": int(m.group(3)),
                "devices": int(m.group(4)), "loaded": g.modules() - before,
                "boot": g.boot_seconds}
    finally:
        g.__exit__(None, None, None)


def log_seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def run_lkmd(args: argparse.Namespace, tmp: Path) -> dict:
    g = boot(args, tmp, "bench-coldplug-lkmd")
    try:
        before = g.modules()
        g.start_dbus()
        # Spawned by hand, not start_lkmd(): its bus-name polling would compete for the vCPU.
        g.lkmd = g.spawn(f"{NOW} > /run/bench-start; exec /usr/sbin/lkmd", log=LKMD_LOG)
        rc, _ = g.run(f"i=0; until grep -q 'Coldplug:' {LKMD_LOG}; do sleep 0.5; "
                      f"i=$((i+1)); [ $i -gt 1200 ] && exit 1; done; exit 0", timeout=660)
        if rc != 0:
            raise GuestError(f"no Coldplug: line from lkmd:\n{g.lkmd_log()}")
        # Quiet: the module count unchanged for QUIET_SECONDS.
        g.check(f"n=$(wc -l < /proc/modules); q=0; while [ $q -lt {QUIET_SECONDS * 2} ]; do "
                f"sleep 0.5; c=$(wc -l < /proc/modules); "
                f"if [ $c = $n ]; then q=$((q+1)); else q=0; n=$c; fi; done", timeout=600)
        log = g.lkmd_log()
        start = float(g.read_file("/run/bench-start").strip())
        stamps = re.findall(r"^(\d\d:\d\d:\d\d\.\d+) .*Inserted '", log, re.M)
        day = start - start % 86400
        last = day + log_seconds(stamps[-1]) if stamps else start
        if last < start - 1:  # the log's clock passed midnight
            last += 86400
        line = re.search(r"Coldplug:.*", log)
        origins = re.findall(r"Inserted '[^']+' for '[^']*' \((\w+)\)", log)
        return {"seconds": last - start, "loaded": g.modules() - before,
                "coldplug_line": line.group(0) if line else "",
                "coldplug": origins.count("coldplug"), "hotplug": origins.count("hotplug"),
                "boot": g.boot_seconds}
    finally:
        g.__exit__(None, None, None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--smp", type=int, default=1, help="guest vCPUs (TCG threads)")
    args = ap.parse_args()

    lk_times, km_times = [], []
    failed = False
    with tempfile.TemporaryDirectory(prefix="lkmd-bench-coldplug-") as t:
        tmp = Path(t)
        kernel = None
        for r in range(args.rounds):
            order = ["kmod", "lkmd"] if r % 2 == 0 else ["lkmd", "kmod"]
            res = {}
            for which in order:
                res[which] = run_kmod(args, tmp) if which == "kmod" else run_lkmd(args, tmp)
            lk, km = res["lkmd"], res["kmod"]
            lk_times.append(lk["seconds"])
            km_times.append(km["seconds"])
            print(f"round {r + 1}: lkmd {lk['seconds']:.2f} s ({len(lk['loaded'])} modules; "
                  f"Inserted lines: {lk['coldplug']} coldplug, {lk['hotplug']} hotplug), "
                  f"kmod {km['seconds']:.2f} s ({len(km['loaded'])} modules, {km['calls']} "
                  f"modprobe calls for {km['devices']} devices), "
                  f"kmod/lkmd {km['seconds'] / lk['seconds']:.2f}x", flush=True)
            print(f"  lkmd: {lk['coldplug_line']}", flush=True)
            if lk["loaded"] != km["loaded"]:
                failed = True
                print(f"  MODULE SETS DIFFER: only lkmd {sorted(lk['loaded'] - km['loaded'])}, "
                      f"only kmod {sorted(km['loaded'] - lk['loaded'])}", flush=True)
            else:
                print(f"  same {len(lk['loaded'])} modules: {' '.join(sorted(lk['loaded']))}",
                      flush=True)
        from kernel import get_kernel
        kernel = get_kernel()

    lk_med, km_med = statistics.median(lk_times), statistics.median(km_times)
    ratios = [k / lk for k, lk in zip(km_times, lk_times)]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"\n{date}, guest kernel {kernel.kver}, qemu TCG -smp {args.smp}, host "
          f"{platform.node()} ({os.cpu_count()} CPUs, load average {load}), "
          f"{args.rounds} round(s)")
    print("| loader | median s | runs |\n|---|---|---|")
    print(f"| lkmd coldplug (parallel) + hotplug for the chain | {lk_med:.2f} | "
          f"{', '.join(f'{x:.2f}' for x in lk_times)} |")
    print(f"| sequential modprobe -b per device (kmod) | {km_med:.2f} | "
          f"{', '.join(f'{x:.2f}' for x in km_times)} |")
    print(f"| ratio kmod/lkmd (of the medians) | {km_med / lk_med:.2f}x | |")
    print(f"| ratio kmod/lkmd (median of the rounds' ratios) | {statistics.median(ratios):.2f}x "
          f"| {', '.join(f'{x:.2f}' for x in ratios)} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
