#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What an idle lkmd costs, in a qemu guest on Debian's kernel: memory and wakeups.

    python3 bench/idle_footprint.py --build-dir build [--seconds N] [--thp MODE]

A daemon that waits for the rare module request must cost next to nothing while it waits
(issue 5: no wakeups at all with nothing to clean, private memory under 2 MiB). Measured, one
state after the other in one guest, each over the same window (default 60 s):

  no records    lkmd --coldplug=no, just started: nothing loaded by lkmd, no candidate
  coldplug      lkmd with its defaults (coldplug, IdleTimeout=60s) at rest after coldplug:
                the drivers it loaded for the guest's devices are candidates, all in use, each
                looked at once by the sweep, and the worker threads retired (30 s after their
                last job)
  pending       lkmd --coldplug=no with IdleTimeout=10min, state file removed first, after a
                mount/umount of a vfat image: vfat, fat and the nls modules are idle candidates
                waiting for their timeout (sweeps every min(timeout/2, 60 s))
  floor         a small C program, compiled now against the host's libkmod, that does what any
                libkmod loader must keep: kmod_new + kmod_load_resources and one alias lookup
                (fs-vfat), then pause()s; measured during "no records"

Wakeups: voluntary + involuntary context switches over the window, summed over every thread
in /proc/PID/task/*/status (each wakeup of a sleeping thread is at least one switch). Memory:
/proc/PID/smaps_rollup at the end of the window. Private = Private_Clean + Private_Dirty.
Caveat: the guest's root is its initramfs (ramfs), so the pages of lkmd's own code and of
libraries no other process maps count as private and dirty here; on a disk-backed system
they are clean page cache, shared and reclaimable. "Anonymous" (heap, stacks, written data)
is the memory that stays private on any system. Debian's kernels enable transparent huge pages
for every mapping (THP "always"): a thread's malloc arena that grows past 2 MiB then takes a
whole huge page. --thp madvise (or never) sets /sys/kernel/mm/transparent_hugepage/enabled
in the guest before anything runs, to tell that cost apart. Not a meson test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "vm"))

from guest import LKMD_MODPROBE, Guest, GuestError  # noqa: E402

FLOOR = "/usr/lib/lkmd-bench/kmod-idle"
FLOOR_SOURCE = r"""#include <libkmod.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    struct kmod_ctx *ctx = kmod_new(NULL, NULL);
    if (!ctx)
        return 1;
    int r = kmod_load_resources(ctx);
    if (r < 0) {
        fprintf(stderr, "kmod_load_resources: %d\n", r);
        return 1;
    }
    struct kmod_list *list = NULL;
    if (kmod_module_new_from_lookup(ctx, "fs-vfat", &list) < 0 || !list) {
        fprintf(stderr, "no fs-vfat\n");
        return 1;
    }
    kmod_module_unref_list(list);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
"""
IMAGE = "/images/vfat0.img"
PENDING_CONFIG = "[Autoclean]\nIdleTimeout=10min\n"
SMAPS_KEYS = ["Rss", "Pss", "Private_Clean", "Private_Dirty", "Anonymous"]


def compile_floor(out: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise GuestError("no C compiler on the host")
    src = out.with_suffix(".c")
    src.write_text(FLOOR_SOURCE)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libkmod"], capture_output=True,
                           text=True).stdout.split() or ["-lkmod"]
    p = subprocess.run([cc, "-O2", "-Wall", "-o", str(out), str(src), *flags],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise GuestError(f"cannot compile the floor program:\n{p.stderr}")
    return out


def switches_script(pids: list[int], seconds: int) -> str:
    """A guest script: per-thread context switches of each pid, a sleep, the same again, then
    each pid's smaps_rollup and status lines."""
    snap = ("for p in {pids}; do for t in /proc/$p/task/*; do "
            "echo \"@@sw $1 $p ${{t##*/}} $(cat $t/comm | tr ' ' _) "
            "$(grep -E '^(non)?voluntary_ctxt_switches' $t/status "
            "| awk '{{s+=$2}} END {{print s}}')\"; done; done")
    snap = snap.format(pids=" ".join(map(str, pids)))
    return (f"snap() {{ {snap}; }}; snap 0; sleep {seconds}; snap 1; "
            + "; ".join(f"echo @@smaps {p}; cat /proc/{p}/smaps_rollup; "
                        f"grep -E '^(Threads|VmRSS)' /proc/{p}/status" for p in pids))


def parse_measurement(out: str, pids: list[int]) -> dict[int, dict]:
    result: dict[int, dict] = {p: {"threads": {}, "mem": {}} for p in pids}
    before: dict[tuple[int, int], int] = {}
    for phase, pid, tid, comm, count in re.findall(r"^@@sw (\d) (\d+) (\d+) (\S+) (\d+)$",
                                                   out, re.M):
        key = (int(pid), int(tid))
        if phase == "0":
            before[key] = int(count)
        else:
            result[int(pid)]["threads"][int(tid)] = (comm, int(count) - before.get(key, 0))
    for block in out.split("@@smaps ")[1:]:
        pid = int(block.split()[0])
        mem = result[pid]["mem"]
        for key, value in re.findall(r"^(\w+):\s+(\d+)", block, re.M):
            mem[key] = int(value)
    return result


def anonymous_breakdown(g: Guest, pid: int, top: int = 6) -> list[str]:
    """The mappings holding most anonymous memory, as "KiB where" strings."""
    text = g.check(f"cat /proc/{pid}/smaps")
    rows = []
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
        head = block.split("\n", 1)[0].split()
        anon = re.search(r"^Anonymous:\s+(\d+)", block, re.M)
        size = re.search(r"^Size:\s+(\d+)", block, re.M)
        if not anon or int(anon.group(1)) == 0:
            continue
        where = head[5] if len(head) > 5 else f"anon {head[1]} {size.group(1) if size else '?'} kB"
        rows.append((int(anon.group(1)), where))
    rows.sort(reverse=True)
    return [f"{kib} {where}" for kib, where in rows[:top]]


def candidates(g: Guest) -> tuple[str, str]:
    """"N candidates, M idle", and what keeps the others, by kind of reason: which of them can
    only be polled (in use) and which wait for an event (bound, loaded for a device, held)."""
    rc, out = g.run("lkmctl --json list")
    if rc != 0:
        return "?", ""
    try:
        mods = json.loads(out)
    except ValueError:
        return "?", ""
    cand = [m for m in mods if m.get("autoclean") and not m.get("pinned")]
    idle = [m for m in cand if m.get("unload_at_usec")]
    kinds: dict[str, list[str]] = {}
    for m in cand:
        why = m.get("kept_because") or ""
        if why:
            kind = re.sub(r" (to|by|for) .*| \(.*", "", why)
            kinds.setdefault(kind, []).append(m["name"])
    kept = "; ".join(f"{kind} x{len(names)} ({' '.join(sorted(names))})"
                     for kind, names in sorted(kinds.items()))
    return f"{len(cand)} candidates, {len(idle)} idle", kept


def wait_at_rest(g: Guest, pid: int) -> None:
    """Every candidate looked at by the sweep (asked every 5 s: a question is work for lkmd),
    then the workers retired (read from /proc only), then 2 s."""
    g.check("i=0; while lkmctl --json list | grep -q 'not yet looked at'; do "
            "[ $i -ge 40 ] && exit 1; sleep 5; i=$((i+1)); done", timeout=260)
    g.check(f"i=0; until grep -q '^Threads:[[:space:]]*1$' /proc/{pid}/status; do "
            f"[ $i -ge 240 ] && exit 1; sleep 0.5; i=$((i+1)); done; sleep 2", timeout=160)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, required=True, help="meson build dir with lkmd")
    ap.add_argument("--seconds", type=int, default=60, help="measuring window (default 60)")
    ap.add_argument("--thp", choices=["always", "madvise", "never"],
                    help="transparent huge pages in the guest (default: the kernel's, always)")
    args = ap.parse_args()

    rows = []  # (state, candidates, threads, mem dict, wakeups, per-thread)
    notes = []
    with tempfile.TemporaryDirectory(prefix="lkmd-idle-") as tmp:
        floor = compile_floor(Path(tmp) / "kmod-idle")
        g = Guest(build_dir=args.build_dir, name="bench-idle-footprint")
        g.add_lkmd()
        g.add_util_linux_mount()
        g.add_binary(FLOOR, floor)
        g.add_vfat_image(IMAGE, size_mib=1)
        g.add_text("/etc/lkmd-pending/lkmd.conf", PENDING_CONFIG)
        with g:
            print(f"# kernel {g.kernel.package} {g.kernel.version}, booted in "
                  f"{g.boot_seconds:.1f} s", flush=True)
            thp_file = "/sys/kernel/mm/transparent_hugepage/enabled"
            if args.thp:
                g.check(f"echo {args.thp} > {thp_file}")
            thp = re.search(r"\[(\w+)\]", g.read_file(thp_file)).group(1)  # "[always] ..."

            def measure(state: str, pids: dict[str, int]) -> None:
                print(f"# measuring {state} for {args.seconds} s ...", flush=True)
                out = g.check(switches_script(list(pids.values()), args.seconds),
                              timeout=args.seconds + 60)
                data = parse_measurement(out, list(pids.values()))
                for name, pid in pids.items():
                    d = data[pid]
                    wake = sum(n for _, n in d["threads"].values())
                    busy = ", ".join(f"{comm}:{n}" for comm, n in d["threads"].values() if n)
                    label = state if name == "lkmd" else name
                    cand, kept = candidates(g) if name == "lkmd" else ("-", "")
                    if kept:
                        notes.append(f"{label}: kept because: {kept}")
                    rows.append((label, cand, len(d["threads"]), d["mem"], wake, busy))
                    notes.append(f"{label}: anonymous by mapping (KiB): "
                                 + "; ".join(anonymous_breakdown(g, pid)))

            floor_proc = g.spawn(f"exec {FLOOR}", log="/run/kmod-idle.log")
            g.start_lkmd(["--coldplug=no"])
            if g.run("grep -q ready /run/kmod-idle.log")[0] != 0:
                g.check("sleep 2")
            g.check("grep -q ready /run/kmod-idle.log")
            g.check("sleep 2")  # let start-up finish
            measure("no records", {"lkmd": g.lkmd.pid, "floor": floor_proc.pid})
            floor_proc.kill()

            g.stop_lkmd()
            g.start_lkmd([])
            # Settled: no new "Inserted" line for 5 s.
            g.check("n=0; last=; i=0; while [ $i -lt 120 ]; do c=$(grep -c Inserted "
                    "/run/lkmd.log); if [ \"$c\" = \"$last\" ]; then n=$((n+1)); else n=0; fi; "
                    "last=$c; [ $n -ge 10 ] && exit 0; sleep 0.5; i=$((i+1)); done; exit 1",
                    timeout=120)
            wait_at_rest(g, g.lkmd.pid)
            measure("coldplug", {"lkmd": g.lkmd.pid})

            g.stop_lkmd()
            g.check("rm -f /run/lkmd/modules.state")
            g.set_modprobe(LKMD_MODPROBE)
            g.start_lkmd(["--coldplug=no", "--config-dir=/etc/lkmd-pending"])
            g.check(f"mkdir -p /mnt/b && mount -t vfat -o loop {IMAGE} /mnt/b && umount /mnt/b")
            g.check("sleep 2")
            measure("pending", {"lkmd": g.lkmd.pid})
            g.stop_lkmd()

    print()
    print(f"idle footprint: {args.seconds} s per state, {datetime.date.today()}, kernel "
          f"{g.kernel.version}, host {platform.machine()} {os.cpu_count()} CPUs, qemu TCG "
          f"-smp 1, THP {thp}; memory in KiB")
    print()
    print("| state | autoclean | threads | RSS | Private (clean+dirty) | Anonymous | "
          "of which huge pages | wakeups/min |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for state, cand, threads, mem, wake, _ in rows:
        private = mem.get("Private_Clean", 0) + mem.get("Private_Dirty", 0)
        per_min = wake * 60 / args.seconds
        print(f"| {state} | {cand} | {threads} | {mem.get('Rss', '?')} | {private} | "
              f"{mem.get('Anonymous', '?')} | {mem.get('AnonHugePages', '?')} | "
              f"{per_min:.0f} |")
    print()
    for state, _, _, _, wake, busy in rows:
        if wake:
            print(f"{state}: switches by thread: {busy}")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
