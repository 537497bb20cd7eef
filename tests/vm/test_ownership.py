#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What lkmd owns, on Debian's real kernel: the modules it loaded on demand and nothing else,
across its own death, other loaders, and races with its own idle unloads.

lkmd runs with IdleTimeout=2s, hotplug on (kernel uevents), kernel.modprobe = lkmd-modprobe and
--log-level=debug (its debug lines measure the window before delete_module()). Scenarios:

  in flight        while lkmd's insertion of brd runs its init, brd is lkmd's, not "external"
  interrupted      lkmd SIGKILLed during that init: the restarted lkmd adopts brd and cleans it
  reloaded         dummy loaded by lkmd, removed by rmmod, loaded again by kmod: never unloaded
  asleep           while a bound e1000 (no timer for it) is the only other candidate, vfat
                   still goes when idle
  link race        `ip link add` around dummy's idle unload: the link is never lost
  fat race         a mount racing the unload of fat: fat is inserted again as lkmd's, and goes

brd's init creates rd_nr ramdisks; with a few hundred under TCG it runs for seconds, long enough
to look at it and to kill lkmd inside it.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from guest import LKMD_MODPROBE, Guest  # noqa: E402
from plug import add_nic, info_json, lkmd_running, pci_dev, wait_bound, wait_until  # noqa: E402
from tap import Suite, comment, expect  # noqa: E402
from test_autoclean import AT, AT_SOURCE, RACE, RACE_SOURCE  # noqa: E402

TIMEOUT = 2.0
CONFIG = "[Autoclean]\nIdleTimeout=2s\nKeep=loop\n"
LKMD_ARGS = ["--config-dir=/etc/lkmd", "--coldplug=no", "--log-level=debug"]
IMAGE = "/images/vfat0.img"
VFAT_SET = ["vfat", "fat", "nls_cp437", "nls_ascii"]
BRD_DISKS = 400
NIC_SLOT = 0x7


def main() -> None:
    with Suite("ownership") as s:
        guest = Guest(build_dir=s.build_dir, name="ownership")
        guest.add_lkmd()
        guest.add_util_linux_mount()
        guest.add_iproute2()
        guest.add_c_program(AT, AT_SOURCE)
        guest.add_c_program(RACE, RACE_SOURCE)
        guest.add_vfat_image(IMAGE, size_mib=1)
        guest.add_text("/etc/lkmd/lkmd.conf", CONFIG)
        guest.add_text("/etc/modprobe.d/ownership.conf",
                       f"options dummy numdummies=0\noptions brd rd_nr={BRD_DISKS} rd_size=1024\n")
        g = s.boot(guest)
        g.check("mkdir -p /mnt/v /mnt/r")
        g.set_modprobe(LKMD_MODPROBE)
        g.start_lkmd(LKMD_ARGS)

        def loaded() -> set[str]:
            return g.modules()

        def wait_gone(names: list[str], seconds: float) -> float:
            t0 = time.monotonic()
            pattern = "|".join(names)
            ok = wait_until(g, f"! grep -qE '^({pattern}) ' /proc/modules", seconds)
            if not ok:
                left = sorted(set(names) & loaded())
                raise AssertionError(
                    f"still loaded after {seconds:g} s: {left}; kept because: "
                    + str({m: info_json(g, m).get("kept_because") for m in left}))
            return time.monotonic() - t0

        def state_of(module: str) -> str:
            rc, out = g.run(f"grep '^{module} ' /proc/modules")
            return out.split()[4] if rc == 0 and len(out.split()) > 4 else "absent"

        # ------------------------------------------------- lkmd's insertion, in flight and cut

        @s.scenario("while lkmd inserts brd, lkmctl info names lkmd's load, not 'external'")
        def _():
            loader = g.spawn("lkmctl load --autoclean brd")
            expect(wait_until(g, "grep -q '^brd .* Loading ' /proc/modules", 30, 0.02),
                   f"brd never showed in its init: {state_of('brd')}")
            j = info_json(g, "brd")
            comment(f"lkmctl info brd during its init: origin {j.get('origin')!r} "
                    f"state {j.get('state')!r} kept because {j.get('kept_because')!r}")
            still = state_of("brd")
            expect(j.get("origin") == "bus" and j.get("autoclean") is True,
                   f"during lkmd's insertion (brd {still}): {j}")
            expect(j.get("kept_because") == "being loaded" or still == "Live", f"{j}")
            expect(wait_until(g, f"! kill -0 {loader.pid} 2>/dev/null", 60), "lkmctl load hung")
            expect(wait_gone(["brd"], 15) > 0, "brd")

        @s.scenario("lkmd SIGKILLed inside brd's init: the restarted lkmd adopts brd and cleans it")
        def _():
            expect(lkmd_running(g), "lkmd is not running")
            pid = g.lkmd.pid
            g.spawn("lkmctl load --autoclean brd")
            expect(wait_until(g, "grep -q '^brd .* Loading ' /proc/modules", 30, 0.02),
                   "brd never showed in its init")
            g.check(f"kill -KILL {pid}")
            g.lkmd = None
            killed_in = state_of("brd")
            comment(f"brd when lkmd was killed: {killed_in}")
            expect(killed_in == "Loading", f"brd's init ended before the kill ({killed_in})")
            state = g.read_file("/run/lkmd/modules.state")
            expect(re.search(r"^brd\torigin=bus\t.*\tinserting=1\t", state, re.M),
                   f"no inserting record of brd in the state file:\n{state}")
            expect(wait_until(g, "grep -q '^brd .* Live ' /proc/modules", 60),
                   "brd's init never finished")
            mark = g.lkmd_log_size()
            g.start_lkmd(LKMD_ARGS)
            j = info_json(g, "brd")
            expect(j.get("origin") == "bus" and j.get("autoclean") is True,
                   f"brd after the restart: {j}")
            expect("1 interrupted insertions adopted" in g.lkmd_log(mark),
                   f"lkmd did not say it adopted brd:\n{g.lkmd_log(mark)}")
            comment(f"brd gone {wait_gone(['brd'], 15):.2f} s after the restart")

        # ------------------------------------------------- somebody else's load

        @s.scenario("dummy removed by rmmod and loaded again by kmod is never unloaded by lkmd")
        def _():
            g.check("ip link add d1 type dummy && ip link del d1")
            expect(info_json(g, "dummy").get("origin") == "kernel", "lkmd did not load dummy")
            g.check("rmmod dummy && /usr/sbin/modprobe dummy")
            g.check(f"sleep {4 * TIMEOUT}", timeout=60)
            expect("dummy" in loaded(), "lkmd unloaded the dummy kmod loaded")
            j = info_json(g, "dummy")
            expect(j.get("origin") == "external", f"kmod's dummy shows as {j}")
            g.check("rmmod dummy")

        # ------------------------------------------------- the sweep never sleeps on a candidate

        @s.scenario("with a bound e1000 as the only other candidate, vfat still goes when idle")
        def _():
            nic = pci_dev(NIC_SLOT)
            add_nic(g, "e1000", "nic7", NIC_SLOT)
            wait_bound(g, nic, "e1000", 30)
            # Long enough for the sweeps to find e1000 kept by its device alone: lkmd then waits
            # for a device event with no timer armed.
            g.check(f"sleep {3 * TIMEOUT}", timeout=60)
            expect(info_json(g, "e1000").get("kept_because", "").startswith("bound to"),
                   f"e1000: {info_json(g, 'e1000')}")
            g.check(f"mount -t vfat -o loop {IMAGE} /mnt/v && umount /mnt/v")
            took = wait_gone(VFAT_SET, 5 * TIMEOUT + 5)
            comment(f"vfat and co. gone {took:.2f} s after umount")
            expect("e1000" in loaded(), "e1000 went while bound")
            g.qmp("device_del", id="nic7")
            g.wait_qmp_event("DEVICE_DELETED", timeout=30, device="nic7")
            comment(f"e1000 gone {wait_gone(['e1000'], 15):.2f} s after device_del")

        # ------------------------------------------------- users that take no reference

        @s.scenario("ip link add around dummy's idle unload: every link it made still exists")
        def _():
            offsets_ms = [-100, -40, -10, 0, 10, 30, 60, 120, 250]
            rows = []
            for n, off in enumerate(offsets_ms):
                g.check("ip link add d0 type dummy && ip link del d0")
                out = g.check(
                    "i=0; until lkmctl --json info dummy 2>/dev/null | "
                    "grep -q '\"unload_at_usec\": [1-9]'; do "
                    "[ $i -ge 60 ] && { echo no UnloadAt; exit 1; }; sleep 0.1; i=$((i+1)); "
                    "done; lkmctl --json info dummy", timeout=60)
                unload_at = json.loads(out[out.index("{"):])["unload_at_usec"]
                link = f"race{n}"
                mark = g.lkmd_log_size()
                rc, out = g.run(f"{AT} {unload_at + off * 1000} /usr/sbin/ip link add {link} "
                                "type dummy", timeout=60)
                g.check("sleep 1")
                exists = g.run(f"ip link show {link}")[0] == 0
                log = g.lkmd_log(mark)
                unloaded = "Removed 'dummy'" in log
                rows.append((off, rc, exists, unloaded))
                expect(rc == 0, f"ip link add at UnloadAt{off:+d} ms failed: {out}\n{log}")
                expect(exists, f"link {link}, made at UnloadAt{off:+d} ms, is gone "
                               f"(dummy unloaded: {unloaded})\n--- lkmd log ---\n{log}")
                g.check(f"ip link del {link}")
            comment("offset ms, ip status, link exists, dummy was unloaded meanwhile: "
                    + "; ".join(f"{o:+d} {rc} {e} {u}" for o, rc, e, u in rows))
            windows = [int(w) for w in re.findall(
                r"Removing 'dummy': looked at its users in \d+ us, (\d+) us before", g.lkmd_log())]
            if windows:
                comment(f"look to delete_module(): {len(windows)} unloads, median "
                        f"{statistics.median(windows)} us, max {max(windows)} us")

        @s.scenario("mounts racing the unload of fat: fat comes back as lkmd's and goes again")
        def _():
            dev = g.check(f"losetup -f --show {IMAGE}").strip()
            seen = []
            try:
                for _cycle in range(3):
                    g.check(f"/usr/bin/mount -t vfat {dev} /mnt/r && umount /mnt/r")
                    # Polls /proc/modules until fat is going (or gone), then mounts at once.
                    rc, out = g.run(f"{RACE} fat 15 /usr/bin/mount -t vfat {dev} /mnt/r",
                                    timeout=60)
                    race = re.search(r"@@race (\w+)", out)
                    seen.append(race.group(1) if race else "?")
                    expect(rc == 0, f"the mount racing fat's unload failed: {out}")
                    j = info_json(g, "fat")
                    expect(j.get("origin") == "kernel" and j.get("trigger") == "fs-vfat",
                           f"fat after the race ({seen[-1]}): {j}")
                    g.check("umount /mnt/r")
                    took = wait_gone(["vfat", "fat"], 15)
                    seen[-1] += f", both gone {took:.1f} s after umount"
            finally:
                comment("fat when the mount started: " + "; ".join(seen))
                g.run(f"umount /mnt/r 2>/dev/null; losetup -d {dev}")

        @s.scenario("lkmd survived")
        def _():
            expect(lkmd_running(g), "lkmd died")


if __name__ == "__main__":
    main()
