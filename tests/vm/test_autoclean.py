#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Autoclean on Debian's real kernel (issue 5): lkmd unloads the modules it loaded on demand
once they have been idle for their timeout, and nothing else.

lkmd runs with [Autoclean] IdleTimeout=2s, so a sweep comes every second and an idle module goes
2 to 3 s after its first idle look (a dependency a sweep later than its holder). "Not before the
timeout" is checked in the guest 0.3 s and 1.5 s after the module fell idle; "gone" within 10 s.
kernel.modprobe points at lkmd-modprobe, so mounts and `ip link add` load through lkmd.

Modules used (leaves, so that nothing else holds them):
  vfat fat nls_cp437 nls_ascii   mount -t vfat -o loop (the kernel asks fs-vfat, nls_cp437,
                                 nls_ascii); loop is in Keep=, so it stays throughout
  e1000                          a NIC hot-added through QMP at 00:06.0
  dummy                          `ip link add d0 type dummy` (rtnl-link-dummy); modprobe.d sets
                                 numdummies=0, else the dummy0 the module makes at load would be
                                 a link of its kind that keeps it forever
  nls_cp850                      lkmctl load (no --autoclean): stays
  nls_cp852                      lkmctl load --autoclean, then pin: stays; after unpin it goes
  nls_cp855                      /sbin/modprobe (kmod, not lkmd): stays, cannot be pinned
  nls_cp857                      lkmctl load --autoclean: goes
  nls_cp860 nls_cp861            the restart scenario: re-loaded by kmod / removed while lkmd
                                 was down

The race with an unload is run two ways. Mounts timed against lkmd's own UnloadAt (plus -50 to
+600 ms) show that a mount around the unload always works, but rarely hit the window itself:
a sweep fires up to sd-event's 250 ms accuracy late, and `mount -o loop` spends ~0.1 s on the
loop device before the kernel asks for fs-vfat. So a poller in the guest (race-going) watches
/proc/modules and, the moment the watched module shows "Unloading" or goes, starts a mount of
an attached loop device or lkmd-modprobe itself (what the kernel runs). Whether lkmd got the
request before it finished the unload is read from its request list and its "Removed" line
and printed; with the helper it is typically 30-150 ms before.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from guest import LKMD_MODPROBE, Guest  # noqa: E402
from plug import (  # noqa: E402
    add_nic, expect_record, info_json, info_text, lkmd_running, pci_dev, wait_bound, wait_until,
)
from tap import Suite, comment, expect  # noqa: E402

TIMEOUT = 2.0  # IdleTimeout= below, in seconds
CONFIG = """\
# lkmd.conf for the autoclean suite: a short timeout so that the suite takes minutes, not hours
[Autoclean]
IdleTimeout=2s
Keep=loop
"""
LKMD_ARGS = ["--config-dir=/etc/lkmd", "--coldplug=no"]
IMAGE = "/images/vfat0.img"
VFAT_SET = ["vfat", "fat", "nls_cp437", "nls_ascii"]
AT = "/usr/lib/lkmd-vm/at-realtime"
# Runs a program at a CLOCK_REALTIME instant (lkmd's UnloadAt plus an offset), so that the
# agent's round trip does not blur the timing; says how late it woke.
AT_SOURCE = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: at-realtime USEC PROGRAM [ARG...]\n");
        return 2;
    }
    unsigned long long target = strtoull(argv[1], NULL, 10);
    struct timespec ts = {(time_t)(target / 1000000), (long)(target % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long late = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000 - (long long)target;
    printf("@@late %lld\n", late);
    fflush(stdout);
    execv(argv[2], argv + 2);
    perror(argv[2]);
    return 127;
}
"""
RACE = "/usr/lib/lkmd-vm/race-going"
# Polls /proc/modules until MODULE shows "Unloading" (delete_module is running its exit), then
# runs a program: a mount issued then makes the kernel request fs-vfat while lkmd is unloading.
RACE_SOURCE = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { LIVE, GOING, ABSENT };

static int module_state(const char *module) {
    static char buf[1 << 16];
    size_t used = 0;
    int fd = open("/proc/modules", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ABSENT;
    ssize_t n;
    while (used < sizeof(buf) - 1 && (n = read(fd, buf + used, sizeof(buf) - 1 - used)) > 0)
        used += (size_t)n;
    close(fd);
    buf[used] = 0;
    size_t len = strlen(module);
    for (char *line = buf; *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        if (strncmp(line, module, len) == 0 && line[len] == ' ')
            return strstr(line, " Unloading ") ? GOING : LIVE;
        if (!end)
            break;
        line = end + 1;
    }
    return ABSENT;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: race-going MODULE SECONDS PROGRAM [ARG...]\n");
        return 2;
    }
    const double deadline = now() + atof(argv[2]);
    const char *seen = "timeout";
    const struct timespec pause = {0, 500000};
    for (;;) {
        int state = module_state(argv[1]);
        if (state != LIVE) {
            seen = state == GOING ? "going" : "gone";
            break;
        }
        if (now() > deadline)
            break;
        nanosleep(&pause, NULL);
    }
    printf("@@race %s\n", seen);
    fflush(stdout);
    execv(argv[3], argv + 3);
    perror(argv[3]);
    return 127;
}
"""
SIGNALS_LOG = "/run/unloaded-signals.log"
NIC_SLOT = 0x6


def main() -> None:
    with Suite("autoclean") as s:
        guest = Guest(build_dir=s.build_dir, name="autoclean")
        guest.add_lkmd()
        guest.add_util_linux_mount()
        guest.add_iproute2()
        guest.add_binary("/usr/bin/dbus-monitor", "/usr/bin/dbus-monitor")
        guest.add_c_program(AT, AT_SOURCE)
        guest.add_c_program(RACE, RACE_SOURCE)
        guest.add_vfat_image(IMAGE, size_mib=1)
        guest.add_text("/etc/lkmd/lkmd.conf", CONFIG)
        guest.add_text("/etc/modprobe.d/dummy.conf", "options dummy numdummies=0\n")
        g = s.boot(guest)
        g.check("mkdir -p /mnt/v /mnt/r")

        def loaded() -> set[str]:
            return g.modules()

        def present(names: list[str]) -> list[str]:
            mods = loaded()
            return [n for n in names if n in mods]

        def lkmctl(args: str) -> str:
            return g.check(f"lkmctl {args} 2>&1", timeout=60)

        def autoclean_column() -> dict[str, str]:
            """{module: AUTOCLEAN cell} of `lkmctl --no-legend list`."""
            rows = {}
            for line in lkmctl("--no-legend list").splitlines():
                cells = re.split(r"\s{2,}", line.strip())
                if len(cells) >= 6:
                    rows[cells[0]] = cells[5]
            return rows

        def kept_because(module: str) -> str:
            return str(info_json(g, module).get("kept_because", "<no kept_because key>"))

        def uptime() -> float:
            return float(g.read_file("/proc/uptime").split()[0])

        def wait_gone(names: list[str], seconds: float = 10, since: float | None = None) -> float:
            """Poll /proc/modules in the guest until none of `names` is left; the guest's
            seconds from `since` (an uptime, default: now) until then. Fails naming what is
            left."""
            pattern = "|".join(names)
            rc, out = g.run(
                f"t0=$(cut -d' ' -f1 /proc/uptime); i=0; "
                f"while grep -qE '^({pattern}) ' /proc/modules; do "
                f"  [ $i -ge {int(seconds * 20)} ] && exit 1; sleep 0.05; i=$((i+1)); done; "
                "t1=$(cut -d' ' -f1 /proc/uptime); echo \"$t0 $t1\"", timeout=seconds + 20)
            if rc != 0:
                left = present(names)
                raise AssertionError(
                    f"still loaded {seconds:g} s later: {left}\n"
                    + "\n".join(f"{m}: kept because {kept_because(m)!r}" for m in left))
            t0, t1 = (float(x) for x in out.split())
            return t1 - (t0 if since is None else since)

        def stays(names: list[str], seconds: float, what: str) -> None:
            """All of `names` are loaded now and still after `seconds`."""
            missing = [n for n in names if n not in loaded()]
            expect(not missing, f"{what}: not loaded to begin with: {missing}")
            g.check(f"sleep {seconds}", timeout=seconds + 20)
            missing = [n for n in names if n not in loaded()]
            expect(not missing, f"{what}: unloaded within {seconds:g} s: {missing}")

        def idle_after(event_cmd: str, names: list[str]) -> tuple[str, float]:
            """Run `event_cmd` (which makes `names` idle) and, in the same guest script, look at
            /proc/modules about 0.3 s and 1.5 s later and take `lkmctl list`: all must still be
            loaded (the timeout is 2 s). Returns the list output and the guest's uptime at the
            event."""
            pattern = "|".join(names)
            out = g.check(
                f"{event_cmd} || exit 90; echo \"@@event $(cut -d' ' -f1 /proc/uptime)\"; "
                f"sleep 0.3; echo \"@@look $(grep -oE '^({pattern}) ' /proc/modules | xargs)\" "
                "\"@@at $(cut -d' ' -f1 /proc/uptime)\"; "
                f"sleep 1.2; echo \"@@look $(grep -oE '^({pattern}) ' /proc/modules | xargs)\" "
                "\"@@at $(cut -d' ' -f1 /proc/uptime)\"; "
                "lkmctl --no-legend list", timeout=60)
            event = float(re.search(r"^@@event (\S+)$", out, re.M).group(1))
            looks = re.findall(r"^@@look (.*) @@at (\S+)$", out, re.M)
            expect(len(looks) == 2, f"cannot read the guest's two looks:\n{out}")
            for look, at in looks:
                late = float(at) - event
                if late >= TIMEOUT:  # a host too busy to wake the guest on time proves nothing
                    comment(f"a look meant for < {TIMEOUT:g} s came {late:.2f} s after, ignored")
                    continue
                expect(set(names) <= set(look.split()),
                       f"gone {late:.2f} s after they fell idle (timeout {TIMEOUT:g} s): "
                       f"{sorted(set(names) - set(look.split()))}\n{out}")
            return out, event

        def signals() -> list[tuple[str, str]]:
            """(name, reason) of each ModuleUnloaded signal dbus-monitor saw."""
            text = g.read_file(SIGNALS_LOG)
            return re.findall(r'member=ModuleUnloaded\n\s*string "([^"]*)"\n\s*string "([^"]*)"',
                              text)

        g.set_modprobe(LKMD_MODPROBE)
        g.start_lkmd(LKMD_ARGS)
        g.start_dbus()
        g.spawn("exec dbus-monitor --system "
                "\"type='signal',interface='org.lkmd1.Manager',member='ModuleUnloaded'\"",
                log=SIGNALS_LOG)
        expect(wait_until(g, f"test -s {SIGNALS_LOG}", 10), "dbus-monitor did not start")
        comment("lkmd log at start:\n" + "\n".join(g.lkmd_log().splitlines()[:8]))

        # ------------------------------------------------------------ (a) vfat

        @s.scenario("mounted vfat: vfat, fat and the nls modules stay for several timeouts")
        def _():
            g.check(f"mount -t vfat -o loop {IMAGE} /mnt/v")
            expect_record(g, "vfat", "kernel", "fs-vfat")
            expect_record(g, "fat", "kernel", "fs-vfat")
            expect_record(g, "nls_cp437", "kernel", "nls_cp437")
            expect_record(g, "loop", "kernel", "char-major-10-237")
            stays(VFAT_SET, 3 * TIMEOUT, "while mounted")
            why = {m: kept_because(m) for m in VFAT_SET}
            comment(f"kept because: {why}")
            expect(why["fat"] == "held by vfat", f"fat: {why['fat']!r}")
            expect(why["vfat"].startswith("in use"), f"vfat: {why['vfat']!r}")
            col = autoclean_column()
            expect(all(col.get(m) == "kept" for m in VFAT_SET),
                   f"AUTOCLEAN column while mounted: { {m: col.get(m) for m in VFAT_SET} }")

        @s.scenario("after umount they stay until the timeout, then all four go within 10 s")
        def _():
            mark = g.lkmd_log_size()
            out, t_idle = idle_after("umount /mnt/v", ["vfat", "nls_cp437", "nls_ascii"])
            row = next((l for l in out.splitlines() if l.split()[:1] == ["vfat"]), "")
            comment(f"lkmctl list 1.5 s after umount: {row}")
            # (No row if lkmctl was slow and vfat already gone: that proves nothing either way.)
            expect(not row or row.endswith(("idle, goes in 1s", "idle, goes in 2s",
                                            "idle, goes now")),
                   f"vfat's AUTOCLEAN is not 'idle, goes in ...' 1.5 s after umount:\n{out}")
            took = wait_gone(VFAT_SET, 10, since=t_idle)
            comment(f"all four gone {took:.2f} s after umount")
            expect("loop" in loaded(), "loop (in Keep=) was unloaded")

        @s.scenario("lkmd signalled each idle unload as ModuleUnloaded(name, 'idle')")
        def _():
            got = signals()
            for m in VFAT_SET:
                expect((m, "idle") in got, f"no ModuleUnloaded('{m}', 'idle'); signals: {got}")

        @s.scenario("lkmd logged each idle unload as \"Removed 'M' after N s idle\"")
        def _():
            log = g.lkmd_log()
            for m in VFAT_SET:
                found = re.search(rf"Removed '{m}' after (\d+) s idle", log)
                expect(found, f"no log line \"Removed '{m}' after N s idle\"; lkmd's Removed "
                              f"lines: {re.findall(r'Removed .*', log)}")
                # Idle time, not age: between the timeout and the next sweep or two.
                idle = int(found.group(1))
                expect(TIMEOUT <= idle <= TIMEOUT + 2, f"{m}: {found.group(0)!r}")

        # ------------------------------------------------------------ (b) e1000

        nic = pci_dev(NIC_SLOT)

        @s.scenario("hot-added e1000 stays while it is bound, for several timeouts")
        def _():
            add_nic(g, "e1000", "nic1", NIC_SLOT)
            wait_bound(g, nic, "e1000", 30)
            expect_record(g, "e1000", "hotplug")
            stays(["e1000"], 3 * TIMEOUT, "bound e1000")
            why = kept_because("e1000")
            expect(why == f"bound to 0000:00:{NIC_SLOT:02x}.0", f"e1000 kept because {why!r}")

        @s.scenario("after device_del, e1000 goes after the timeout, not before")
        def _():
            expect("e1000" in loaded(), "e1000 is not loaded (previous scenario failed?)")
            # The driver lets go when the guest ejects the device; time from its driver link
            # going, which the driver core removes before e1000's remove() runs (the device's
            # own node goes after that, under TCG up to a second later).
            g.qmp("device_del", id="nic1")
            _, t_idle = idle_after(f"i=0; while test -e /sys{nic}/driver; do "
                                   "[ $i -ge 1500 ] && exit 1; sleep 0.02; i=$((i+1)); done",
                                   ["e1000"])
            comment(f"e1000 gone {wait_gone(['e1000'], 10, since=t_idle):.2f} s after the device")
            g.wait_qmp_event("DEVICE_DELETED", timeout=30, device="nic1")

        # ------------------------------------------------------------ (c) dummy

        @s.scenario("dummy loaded for 'ip link add d0 type dummy' stays while d0 exists")
        def _():
            g.check("ip link add d0 type dummy")
            expect_record(g, "dummy", "kernel", "rtnl-link-dummy")
            links = g.check("ip -o link show type dummy | cut -d: -f2 | xargs").split()
            expect(links == ["d0"], f"dummy links: {links} (numdummies=0 not applied?)")
            stays(["dummy"], 3 * TIMEOUT, "dummy with d0")
            why = kept_because("dummy")
            comment(f"dummy kept because {why!r}")
            expect(why != "", "dummy has no reason to stay")

        @s.scenario("after 'ip link del d0', dummy goes after the timeout, not before")
        def _():
            _, t_idle = idle_after("ip link del d0", ["dummy"])
            comment(f"dummy gone {wait_gone(['dummy'], 10, since=t_idle):.2f} s after d0")

        # ------------------------------------------------------------ (d) what must stay

        kept = {
            "nls_cp850": ("bus", "kept", "loaded over D-Bus without autoclean"),
            "nls_cp852": ("bus", "pinned", "pinned"),
            "loop": ("kernel", "kept", "listed in Keep="),
            "nls_cp855": ("external", "-", "loaded by someone else"),
        }

        @s.scenario("load --autoclean goes; plain load, pinned, Keep= and kmod's modules stay")
        def _():
            expect(lkmctl("load nls_cp850") == "Inserted nls_cp850.\n", "load nls_cp850")
            lkmctl("load --autoclean nls_cp852")
            expect(lkmctl("pin nls_cp852") == "Pinned nls_cp852.\n", "pin nls_cp852")
            g.check("/sbin/modprobe nls_cp855")
            t0 = time.monotonic()
            t_load = uptime()
            expect(lkmctl("load --autoclean nls_cp857") == "Inserted nls_cp857.\n",
                   "load --autoclean nls_cp857")
            j = info_json(g, "nls_cp857")
            expect(j.get("autoclean") is True and j.get("origin") == "bus",
                   f"nls_cp857 after load --autoclean: {j}")
            took = wait_gone(["nls_cp857"], 10, since=t_load)
            comment(f"nls_cp857 gone {took:.2f} s after its load")
            expect(took >= TIMEOUT, f"nls_cp857 went {took:.2f} s after its load")
            # Four timeouts in all for the others.
            rest = 4 * TIMEOUT - (time.monotonic() - t0)
            if rest > 0:
                g.check(f"sleep {rest:.1f}", timeout=rest + 20)
            missing = [m for m in kept if m not in loaded()]
            expect(not missing, f"unloaded after {4 * TIMEOUT:g} s: {missing}")
            col = autoclean_column()
            for m, (origin, column, why) in kept.items():
                j = info_json(g, m)
                expect(j.get("origin") == origin, f"{m}: origin {j.get('origin')!r}")
                expect(col.get(m) == column, f"{m}: AUTOCLEAN {col.get(m)!r}, expected {column!r}")
                expect(j.get("kept_because") == why,
                       f"{m}: kept_because {j.get('kept_because')!r}, expected {why!r}")
            t = info_text(g, "nls_cp852")
            expect(t.get("Pinned") == "yes" and t.get("Autoclean") == "yes",
                   f"lkmctl info nls_cp852: {t}")

        @s.scenario("pin refuses a module lkmd did not load; unpin lets a pinned module go")
        def _():
            rc, out = g.run("lkmctl pin nls_cp855 2>&1")
            expect(rc == 1 and out.startswith("lkmctl: cannot pin 'nls_cp855': "), out)
            rc, out = g.run("dbus-send --system --print-reply --dest=org.lkmd1 /org/lkmd1 "
                            "org.lkmd1.Manager.SetModulePinned string:nls_cp855 boolean:true 2>&1")
            expect(rc != 0 and "org.lkmd1.Error.External" in out, out)
            t_unpin = uptime()
            expect(lkmctl("unpin nls_cp852") == "Unpinned nls_cp852.\n", "unpin nls_cp852")
            took = wait_gone(["nls_cp852"], 10, since=t_unpin)
            comment(f"nls_cp852 gone {took:.2f} s after unpin")
            expect(took >= TIMEOUT, f"nls_cp852 went {took:.2f} s after unpin")
            expect({"nls_cp850", "nls_cp855", "loop"} <= loaded(), f"loaded: {sorted(loaded())}")

        # ------------------------------------------------------------ (e) restart

        @s.scenario("after SIGKILL and restart, lkmd still cleans what it loaded before")
        def _():
            expect(lkmd_running(g), "lkmd is not running")
            pid = g.lkmd.pid
            # All within one timeout: loads, mount, umount, kill.
            g.check("lkmctl load --autoclean nls_cp860 && lkmctl load --autoclean nls_cp861 && "
                    f"mount -t vfat -o loop {IMAGE} /mnt/v && umount /mnt/v && kill -KILL {pid}")
            g.lkmd = None
            expect(wait_until(g, f"! kill -0 {pid} 2>/dev/null", 10), "lkmd survived SIGKILL")
            expect(set(VFAT_SET + ["nls_cp860", "nls_cp861"]) <= loaded(),
                   f"already gone before the restart: {sorted(loaded())}")
            state = g.run("cat /run/lkmd/modules.state")[1]
            comment(f"/run/lkmd/modules.state:\n{state}")
            # While lkmd is down: kmod re-loads one module and removes another.
            g.check("rmmod nls_cp860 && /sbin/modprobe nls_cp860 && rmmod nls_cp861")
            g.start_lkmd(LKMD_ARGS)
            t_start = uptime()
            g.check("/sbin/modprobe nls_cp861")  # by kmod again, after lkmd forgot it
            took = wait_gone(VFAT_SET, 15, since=t_start)
            comment(f"vfat and co. gone {took:.2f} s after the restart")
            g.check(f"sleep {TIMEOUT}")
            for m in ("nls_cp860", "nls_cp861"):
                expect(m in loaded(), f"{m}, loaded by kmod while lkmd was down, was unloaded")
                j = info_json(g, m)
                expect(j.get("origin") == "external" and j.get("autoclean") is False,
                       f"{m} was adopted: {j}")

        # ------------------------------------------------------------ (f) the race

        @s.scenario("mounts racing the idle unload of vfat all succeed")
        def _():
            expect(lkmd_running(g), "lkmd is not running")
            # Around lkmd's UnloadAt: a sweep is due then, give or take sd-event's coalescing.
            offsets_ms = [-50, 0, 20, 50, 100, 200, 400, 600]
            outcomes = []
            for off in offsets_ms:
                mark = g.lkmd_log_size()
                g.check(f"mount -t vfat -o loop {IMAGE} /mnt/r && umount /mnt/r")
                out = g.check(
                    "i=0; until lkmctl --json info vfat 2>/dev/null | "
                    "grep -q '\"unload_at_usec\": [1-9]'; do "
                    "[ $i -ge 50 ] && { echo no UnloadAt; exit 1; }; sleep 0.1; i=$((i+1)); "
                    "done; lkmctl --json info vfat", timeout=60)
                unload_at = json.loads(out[out.index("{"):])["unload_at_usec"]
                rc, out = g.run(f"{AT} {unload_at + off * 1000} /usr/bin/mount -t vfat -o loop "
                                f"{IMAGE} /mnt/r; st=$?; umount /mnt/r 2>/dev/null; exit $st",
                                timeout=60)
                late = re.search(r"@@late (-?\d+)", out)
                log = g.lkmd_log(mark)
                unloaded = "Removed 'vfat'" in log
                outcomes.append((off, rc, int(late.group(1)) if late else None, unloaded))
                expect(rc == 0, f"mount at UnloadAt{off:+d} ms failed (exit {rc}): {out}\n"
                                f"--- lkmd log since ---\n{log}")
            comment("offset ms, mount status, wake-up lateness us, vfat unloaded first: "
                    + "; ".join(f"{o:+d} {rc} {l} {'yes' if u else 'no'}"
                                for o, rc, l, u in outcomes))
            comment(f"{sum(1 for *_, u in outcomes if u)} of {len(outcomes)} mounts came after "
                    "lkmd had begun to unload vfat")
            expect(lkmd_running(g), "lkmd died")

        def request_lead(log: str, module: str) -> str:
            """" (fs-vfat N ms before)" when lkmd's last fs-vfat request arrived N ms before
            its "Removed 'module'" line (the request then waited for the unload), "... after"
            otherwise. Both clocks are the guest's wall clock in UTC."""
            removed = re.search(rf"^(\d\d):(\d\d):(\d\d\.\d+) .*Removed '{module}'", log, re.M)
            rc, out = g.run("lkmctl --json requests")
            if not removed or rc != 0:
                return ""
            times = [r["time_usec"] for r in json.loads(out) if r.get("request") == "fs-vfat"]
            if not times:
                return ""
            h, m, sec = removed.groups()
            removed_s = int(h) * 3600 + int(m) * 60 + float(sec)
            lead_ms = (removed_s - (times[-1] / 1e6) % 86400) * 1000
            return f" (fs-vfat {abs(lead_ms):.0f} ms {'before' if lead_ms > 0 else 'after'})"

        @s.scenario("requests for vfat issued while lkmd unloads vfat or fat are served")
        def _():
            expect(lkmd_running(g), "lkmd is not running")
            # A loop device set up once: "mount -o loop" spends ~0.1 s on loop setup before it
            # asks for the file system, by when the unload is over.
            dev = g.check(f"losetup -f --show {IMAGE}").strip()
            mount = f"/usr/bin/mount -t vfat {dev} /mnt/r"
            helper = f"{LKMD_MODPROBE} -q -- fs-vfat"
            # (watched module, what runs when it leaves, whose unload the request meets).
            # nls_ascii goes first in the sweep that removes vfat; lkmd-modprobe is what the
            # kernel runs for request_module("fs-vfat"), without the mount in front of it.
            cycles = [("vfat", mount, "vfat"), ("nls_ascii", mount, "vfat"),
                      ("vfat", helper, "vfat"), ("nls_ascii", helper, "vfat"),
                      ("nls_ascii", helper, "vfat"), ("fat", mount, "fat")]
            seen = []
            try:
                for watched, action, unloaded in cycles:
                    mark = g.lkmd_log_size()
                    g.check(f"{mount} && umount /mnt/r")
                    rc, out = g.run(f"{RACE} {watched} 12 {action}; st=$?; "
                                    "umount /mnt/r 2>/dev/null; "
                                    "grep -q '^vfat ' /proc/modules || st=91; exit $st",
                                    timeout=60)
                    m = re.search(r"@@race (\w+)", out)
                    log = g.lkmd_log(mark)
                    what = "mount" if action == mount else "helper"
                    seen.append(f"{what} at {watched} {m.group(1) if m else '?'}"
                                f"{request_lead(log, unloaded)}")
                    expect(rc != 91, f"{seen[-1]}: succeeded but vfat is not loaded:\n{out}")
                    expect(rc == 0, f"{seen[-1]}: failed (exit {rc}): {out}\n"
                                    f"--- lkmd log since ---\n{log}")
            finally:
                comment("each request, when it started, and when lkmd got fs-vfat against the "
                        "end of the unload:\n" + "\n".join(seen))
                g.run(f"umount /mnt/r 2>/dev/null; losetup -d {dev}")
            expect(lkmd_running(g), "lkmd died")

if __name__ == "__main__":
    main()
