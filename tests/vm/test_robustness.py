#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Robustness on Debian's real kernel (issue 16).

- an install command runs as modprobe runs it, MODPROBE_MODULE set, and loads its module with
  modprobe --ignore-install (that no signal stays blocked is test_install_command's: the guest's
  /bin/sh is dash, which clears the mask it starts with);
- a storm: 256 concurrent `mount -t vfat` with vfat absent while lkmd is SIGKILLed and started
  again at random points: no mount fails (the helper falls back to kmod's modprobe while lkmd is
  down), and no lkmd lifetime inserts vfat twice;
- chaos: randomized steps of mount/umount, e1000 hot-add/remove, dummy links and waits past the
  2 s idle timeout: after every step each mount, bound NIC and link still has its module, and at
  the end, with everything removed, every module lkmd loaded is gone.
The steps come from a seed, printed first (LKMD_CHAOS_SEED=N repeats a run's steps).
"""
from __future__ import annotations

import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from guest import KMOD_MODPROBE, LKMD_MODPROBE, Guest  # noqa: E402
from plug import add_nic, pci_dev, remove_device, wait_bound, wait_until  # noqa: E402
from tap import Suite, comment, expect  # noqa: E402

IMAGE = "/images/vfat0.img"
CONFIG = "[Autoclean]\nIdleTimeout=2s\nKeep=loop\n"
LKMD_ARGS = ["--config-dir=/etc/lkmd", "--coldplug=no"]
# Succeeds only when run as modprobe would run it (then loads the module itself, as install
# commands do).
INSTALL_CHECK = (
    "install nls_cp866 /bin/sh -c 'test \"$MODPROBE_MODULE\" = nls_cp866 && "
    f"{KMOD_MODPROBE} --ignore-install nls_cp866'\n")
STORM = 256
ROUNDS = int(os.environ.get("LKMD_STORM_ROUNDS", "1"))
# 200 steps (the figure) take about 5 min under TCG; LKMD_CHAOS_STEPS=1000 for a long run.
STEPS = int(os.environ.get("LKMD_CHAOS_STEPS", "200"))
NIC_SLOTS = [6, 7]
VFAT_SET = ["vfat", "fat", "nls_cp437", "nls_ascii"]


def kill_and_restart(g: Guest) -> None:
    g.run("kill -9 $(pidof lkmd) 2>/dev/null")
    g.lkmd = None
    g.start_lkmd(LKMD_ARGS)


def lifetimes(log: str) -> list[str]:
    """lkmd's log cut where each lkmd starts serving."""
    parts = re.split(r"^.*lkmd: Serving .*$", log, flags=re.M)
    return [p for p in parts if p.strip()]


def main() -> None:
    seed = int(os.environ.get("LKMD_CHAOS_SEED", random.SystemRandom().randrange(1 << 32)))
    rng = random.Random(seed)
    with Suite("robustness") as s:
        comment(f"seed {seed} (LKMD_CHAOS_SEED={seed} repeats these steps)")
        guest = Guest(build_dir=s.build_dir, name="robustness")
        guest.add_lkmd()
        guest.add_util_linux_mount()
        guest.add_iproute2()
        guest.add_vfat_image(IMAGE, size_mib=1)
        guest.add_text("/etc/lkmd/lkmd.conf", CONFIG)
        guest.add_text("/etc/modprobe.d/robustness.conf",
                       "options dummy numdummies=0\n" + INSTALL_CHECK)
        g = s.boot(guest)
        g.set_modprobe(LKMD_MODPROBE)
        g.start_lkmd(LKMD_ARGS)

        @s.scenario("an install command runs with MODPROBE_MODULE set and loads its module")
        def _():
            out = g.check("lkmctl load nls_cp866 2>&1; echo status=$?")
            expect("status=0" in out, f"install command refused: {out}\n{g.lkmd_log()[-2000:]}")
            expect("nls_cp866" in g.modules(), "nls_cp866 not loaded by its install command")

        def unmount_storm() -> None:
            g.run("umount -a -t vfat", timeout=300)

        @s.scenario(f"{STORM} concurrent vfat mounts while lkmd is killed: none fails, "
                    "vfat inserted at most once per lkmd lifetime")
        def _():
            g.check(f"i=0; while [ $i -lt {STORM} ]; do mkdir -p /mnt/storm/$i; i=$((i+1)); done")
            dev = g.check(f"losetup -f --show {IMAGE}").strip()
            mark = g.lkmd_log_size()
            try:
                for round_ in range(ROUNDS):
                    unmount_storm()
                    g.run("rmmod vfat fat nls_cp437 nls_ascii 2>/dev/null")
                    expect("vfat" not in g.modules(), "vfat still loaded before the storm")
                    started = time.monotonic()
                    storm = g.spawn(
                        f"i=0; while [ $i -lt {STORM} ]; do "
                        f"(mount -t vfat {dev} /mnt/storm/$i || echo FAILED $i) & "
                        "i=$((i+1)); done; wait; echo STORM-DONE")
                    kills = 0
                    while kills < 3 and storm.alive():
                        time.sleep(rng.uniform(0.0, 2.0))
                        kill_and_restart(g)
                        kills += 1
                    while storm.alive() and time.monotonic() - started < 600:
                        time.sleep(1)
                    out = storm.output()
                    mounted = int(g.check("grep -c ' /mnt/storm/' /proc/mounts || true").strip())
                    comment(f"round {round_}: {kills} kills, {out.count('FAILED')} failed, "
                            f"{mounted} mounted in {time.monotonic() - started:.0f} s")
                    expect("STORM-DONE" in out,
                           f"the storm did not finish: {mounted} mounted; mount processes: "
                           + g.run("ps | grep -c '[m]ount -t vfat'")[1].strip())
                    expect("FAILED" not in out and mounted == STORM,
                           f"{mounted} of {STORM} mounted: {out[-1500:]}")
                for life in lifetimes(g.lkmd_log(mark)):
                    n = len(re.findall(r"Inserted 'vfat'", life))
                    expect(n <= 1, f"one lkmd lifetime inserted vfat {n} times")
            finally:
                unmount_storm()
                g.run(f"losetup -d {dev}")

        @s.scenario(f"{STEPS} random steps: nothing in use is unloaded; all idle modules go")
        def _():
            mounts: set[int] = set()
            nics: dict[int, str] = {}  # slot -> device id
            links: set[int] = set()
            # What the storm left (kmod's fallback may have loaded vfat): lkmd loads it anew.
            unmount_storm()
            g.run("rmmod vfat fat nls_cp437 nls_ascii 2>/dev/null")
            started = time.monotonic()
            counts: dict[str, int] = {}

            def check_invariants(step: int, what: str) -> None:
                loaded = g.modules()
                problems = []
                if mounts and not {"vfat", "fat"} <= loaded:
                    problems.append("vfat or fat gone under a mount")
                for slot in nics:
                    rc, out = g.run(f"readlink /sys{pci_dev(slot)}/driver")
                    if "e1000" not in loaded or not out.strip().endswith("e1000"):
                        problems.append(f"NIC at {slot} lost e1000")
                if links:
                    rc, out = g.run("ip -o link show type dummy")
                    for i in links:
                        if f" d{i}:" not in out and f" d{i}@" not in out:
                            problems.append(f"link d{i} is gone")
                expect(not problems, f"step {step} ({what}): {problems}; seed {seed}; "
                                     f"lkmd log:\n{g.lkmd_log()[-3000:]}")

            for step in range(STEPS):
                choice = rng.choices(
                    ["mount", "umount", "nic-add", "nic-del", "link-add", "link-del", "idle"],
                    weights=[3, 3, 1, 1, 3, 3, 1])[0]
                counts[choice] = counts.get(choice, 0) + 1
                if choice == "mount" and len(mounts) < 3:
                    i = min({0, 1, 2} - mounts)
                    g.check(f"mkdir -p /mnt/c{i} && mount -t vfat -o loop {IMAGE} /mnt/c{i}")
                    mounts.add(i)
                elif choice == "umount" and mounts:
                    i = rng.choice(sorted(mounts))
                    g.check(f"umount -d /mnt/c{i}")
                    mounts.discard(i)
                elif choice == "nic-add" and len(nics) < len(NIC_SLOTS):
                    slot = min(set(NIC_SLOTS) - set(nics))
                    nics[slot] = f"chaos{step}"
                    wait_bound(g, add_nic(g, "e1000", nics[slot], slot), "e1000")
                elif choice == "nic-del" and nics:
                    slot = rng.choice(sorted(nics))
                    remove_device(g, nics.pop(slot), pci_dev(slot))
                elif choice == "link-add" and len(links) < 3:
                    i = min({0, 1, 2} - links)
                    g.check(f"ip link add d{i} type dummy")
                    links.add(i)
                elif choice == "link-del" and links:
                    i = rng.choice(sorted(links))
                    g.check(f"ip link del d{i}")
                    links.discard(i)
                else:
                    time.sleep(2.5)  # past the idle timeout: a sweep comes
                check_invariants(step, choice)

            for i in sorted(mounts):
                g.check(f"umount -d /mnt/c{i}")
            for slot in sorted(nics):
                remove_device(g, nics[slot], pci_dev(slot))
            for i in sorted(links):
                g.check(f"ip link del d{i}")
            gone = ["e1000", "dummy", *VFAT_SET]
            ok = wait_until(g, " && ".join(f"! grep -q '^{m} ' /proc/modules" for m in gone), 15)
            left = sorted(set(gone) & g.modules())
            comment(f"{STEPS} steps {counts} in {time.monotonic() - started:.0f} s")
            expect(ok and not left, f"still loaded after everything went idle: {left}")


if __name__ == "__main__":
    main()
