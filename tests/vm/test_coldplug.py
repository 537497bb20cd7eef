#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Coldplug on Debian's real kernel (issue 4): devices present from boot get their drivers
when lkmd starts, recorded with origin "coldplug", and lkmd logs one "Coldplug:" summary.

The guest has no udevd and /init loads only the 9p modules, so nothing else loads the
drivers of the boot devices before lkmd does (checked first). Devices from boot:

  00:05.0 qemu-xhci + usb-kbd  xhci_pci by coldplug, then usbhid/hid_generic for the
                               devices that appear behind it (origin coldplug or hotplug)
  00:06.0 e1000                e1000
  00:07.0 virtio-net-pci       virtio_pci is built in: virtio_net for its virtio child
  00:08.0 virtio-rng-pci       virtio_rng is blacklisted in /etc/modprobe.d: not loaded
  00:09.0 i82559er             e100 is refused by [Deny] Modules= in lkmd.conf: not loaded
  00:0a.0 rtl8139              bound to 8139cp (loaded with kmod before lkmd; qemu's
                               rtl8139 is a C+ chip, which 8139too declines): the alias
                               also resolves to 8139too, which must not be loaded
plus what `-machine pc` itself has (IDE, VGA, PIIX4 ACPI, ACPI/platform/input devices).
The NICs have no option ROM (romfile=): iPXE would add seconds to the boot.
"""

from __future__ import annotations

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from guest import LKMD_LOG, Guest  # noqa: E402
from plug import (  # noqa: E402
    bound_driver, expect_record, find_child, info_json, inserted, lkmctl, lkmd_running, modalias,
    pci_dev, usb_interface, wait_bound, wait_until,
)
from tap import Suite, comment, expect  # noqa: E402

CONFIG = """\
# lkmd.conf for the coldplug suite
[Deny]
Modules = e100
"""
LKMD_ARGS = ["--config-dir=/etc/lkmd"]
QEMU_ARGS = [
    "-device", "qemu-xhci,id=xhci,addr=0x5", "-device", "usb-kbd,bus=xhci.0,id=kbd",
    "-netdev", "user,id=cn6", "-device", "e1000,netdev=cn6,addr=0x6,romfile=",
    "-netdev", "user,id=cn7", "-device", "virtio-net-pci,netdev=cn7,addr=0x7,romfile=",
    "-device", "virtio-rng-pci,addr=0x8",
    "-netdev", "user,id=cn9", "-device", "i82559er,netdev=cn9,addr=0x9,romfile=",
    "-netdev", "user,id=cna", "-device", "rtl8139,netdev=cna,addr=0xa,romfile=",
]
EXPECTED = ["xhci_pci", "e1000", "virtio_net", "usbhid", "hid_generic"]
REFUSED = ["virtio_rng", "e100", "8139too"]
COLDPLUG_LINE = re.compile(r"Coldplug:.*")
# devpath, subsystem, modalias, kmod's modules; for devices in a subsystem without a driver.
UNBOUND_WALK = r"""
find /sys/devices -name modalias | while read -r f; do
    d=${f%/modalias}
    [ -e "$d/driver" ] && continue
    [ -e "$d/subsystem" ] || continue
    s=$(readlink "$d/subsystem"); read -r a < "$f"
    m=$(/usr/sbin/modprobe -R "$a" 2>/dev/null | tr '\n' ' ')
    printf '%s\t%s\t%s\t%s\n' "$d" "${s##*/}" "$a" "$m"
done
"""


def main() -> None:
    with Suite("coldplug") as s:
        guest = Guest(build_dir=s.build_dir, name="coldplug", qemu_args=QEMU_ARGS)
        guest.add_lkmd()
        guest.add_text("/etc/lkmd/lkmd.conf", CONFIG)
        guest.add_text("/etc/modprobe.d/test.conf", "blacklist virtio_rng\n")
        g = s.boot(guest)
        xhci, e1000, vnet, rng, e100, rtl = (pci_dev(n) for n in (5, 6, 7, 8, 9, 0xA))
        at_boot: set[str] = set()
        before_lkmd: set[str] = set()  # at boot plus 8139cp and mii, loaded with kmod
        unbound: list[tuple[str, str, str, str]] = []  # devpath, subsystem, modalias, modules

        @s.scenario("at boot nothing has loaded the drivers of the boot devices")
        def _():
            nonlocal at_boot
            at_boot = g.modules()
            comment(f"/proc/modules at boot: {' '.join(sorted(at_boot))}")
            early = at_boot & set(EXPECTED + REFUSED + ["8139cp"])
            expect(not early, f"already loaded at boot: {sorted(early)}")
            for path in (xhci, e1000, e100, rtl):
                expect(bound_driver(g, path) is None,
                       f"{path} is bound to {bound_driver(g, path)} at boot")
            for path in (vnet, rng):  # virtio-pci (built in) serves these; not their child
                child = find_child(g, path, "virtio*")
                expect(bound_driver(g, child) is None, f"{child} bound at boot")
            # 8139cp from kmod, by name: it binds the rtl8139 before lkmd runs.
            g.check("/usr/sbin/modprobe 8139cp")
            wait_bound(g, rtl, "8139cp", 10)
            expect("8139too" not in g.modules(), "modprobe 8139cp loaded 8139too")
            # Every device (bus or class) with a modalias kmod resolves and no driver: what a
            # sysfs walk must find (udev's coldplug triggers them all, /sys/class included).
            out = g.check(UNBOUND_WALK, timeout=120)
            for line in out.splitlines():
                parts = line.split("\t")
                if len(parts) == 4 and parts[3].strip():
                    unbound.append((parts[0][len("/sys"):], parts[1], parts[2], parts[3].strip()))
            comment("unbound at boot, with kmod's resolution:\n" + "\n".join(
                f"{d} [{sub}] {a[:60]} -> {m}" for d, sub, a, m in unbound))
            before_lkmd.update(g.modules())

        @s.scenario("--coldplug=no: lkmd starts and loads nothing")
        def _():
            before = g.modules()
            g.start_lkmd([*LKMD_ARGS, "--coldplug=no"])
            g.check("sleep 3")
            log = g.lkmd_log()
            g.stop_lkmd()
            extra = g.modules() - before
            expect(not extra, f"--coldplug=no loaded {sorted(extra)}\n{log}")
            expect("Coldplug:" not in log and not inserted(log),
                   f"--coldplug=no coldplugged:\n{log}")

        mark = 0

        @s.scenario("lkmd coldplugs at start before the system bus exists, as early in boot: "
                    "e1000, virtio_net, xhci_pci bound; it takes its name when the bus comes")
        def _():
            nonlocal mark
            mark = g.lkmd_log_size()
            g.check("for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = dbus-daemon ] "
                    "&& kill ${p#/proc/}; done; i=0; while [ -S /run/dbus/system_bus_socket ] && "
                    "[ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; rm -f /run/dbus/system_bus_socket")
            g.lkmd = g.spawn("exec /usr/sbin/lkmd " + " ".join(LKMD_ARGS), log=LKMD_LOG)
            wait_bound(g, e1000, "e1000", 60)
            wait_bound(g, xhci, "xhci_hcd", 60)
            child = find_child(g, vnet, "virtio*")
            wait_bound(g, child, "virtio_net", 60)
            expect(lkmd_running(g) and "Connected to the system bus" not in g.lkmd_log(mark),
                   f"lkmd without a bus:\n{g.lkmd_log(mark)}")
            g.start_dbus()
            expect(wait_until(g, "grep -q 'Connected to the system bus as org.lkmd1' "
                                 "/run/lkmd.log", 30),
                   f"lkmd did not take its name once the bus came:\n{g.lkmd_log(mark)}")
            expect_record(g, "e1000", "coldplug", modalias(g, e1000), e1000)
            expect_record(g, "xhci_pci", "coldplug", modalias(g, xhci), xhci)
            expect_record(g, "virtio_net", "coldplug", modalias(g, child), child)

        @s.scenario("the log has one 'Coldplug:' summary with modules, devices and time")
        def _():
            ok = wait_until(g, f"tail -c +{mark + 1} /run/lkmd.log | grep -q 'Coldplug:'", 60)
            log = g.lkmd_log(mark)
            expect(ok, f"no 'Coldplug:' line in the log:\n{log}")
            lines = COLDPLUG_LINE.findall(log)
            comment("\n".join(lines))
            expect(len(lines) == 1, f"{len(lines)} Coldplug: lines")
            line = lines[0]
            m_mod = re.search(r"(\d+) modules?", line)
            m_dev = re.search(r"(\d+) devices?", line)
            m_time = re.search(r"\d+(\.\d+)?\s*(ms|s|us|µs)\b", line)
            expect(m_mod and m_dev and m_time,
                   f"the Coldplug: line does not say N modules, M devices and a time: {line}")
            expect(int(m_mod.group(1)) >= 3 and int(m_dev.group(1)) >= 3,
                   f"fewer than 3 modules/devices (e1000, virtio_net, xhci_pci at least): {line}")

        @s.scenario("devices behind the coldplugged xhci get their drivers: usbhid, hid_generic")
        def _():
            intf = usb_interface(g, "ic03isc01ip01", 30)
            wait_bound(g, intf, "usbhid", 30)
            hid = find_child(g, intf, "0003:0627:0001.*")
            wait_bound(g, hid, "hid-generic", 30)
            for m, path in (("usbhid", intf), ("hid_generic", hid)):
                j = expect_record(g, m, g_origin(g, m), modalias(g, path), path)
                comment(f"{m}: origin {j['origin']} for {path}")

        @s.scenario("blacklisted (kmod) and denied (lkmd.conf) drivers are not coldplugged")
        def _():
            expect("Coldplug:" in g.lkmd_log(mark), "coldplug has not finished")
            loaded = g.modules()
            expect("virtio_rng" not in loaded, "virtio_rng loaded despite 'blacklist virtio_rng'")
            expect("e100" not in loaded, "e100 loaded despite [Deny] Modules=e100")
            rng_child = find_child(g, rng, "virtio*")
            expect(bound_driver(g, rng_child) is None, f"{rng_child} got a driver")
            expect(bound_driver(g, e100) is None, f"{e100} got a driver")

        @s.scenario("coldplug acted on every unbound device of a subsystem, bus or class")
        def _():
            # Every request lkmd answered, loaded or not, is in its history with the device.
            history = json.loads(g.check("lkmctl --json requests"))
            asked = {r["request"] for r in history if r["origin"] in ("coldplug", "hotplug")}
            missed = [(d, sub, a, m) for d, sub, a, m in unbound
                      if a not in asked and bound_driver(g, d) is None]
            expect(not missed, "lkmd's request history never names the modalias of these devices, which "
                   "had no driver when it started and still have none (kmod resolves each):\n"
                   + "\n".join(f"{d} [{sub}] {a} -> {m}" for d, sub, a, m in missed))

        @s.scenario("a device with a driver bound is skipped: 8139too is not loaded")
        def _():
            expect(bound_driver(g, rtl) == "8139cp", f"{rtl} bound to {bound_driver(g, rtl)}")
            expect("8139too" not in g.modules(),
                   "8139too loaded: coldplug resolved the modalias of a device 8139cp serves")

        @s.scenario("every module inserted since lkmd started is recorded as lkmd's")
        def _():
            # Nothing but lkmd loads modules in this guest once it runs (kernel.modprobe is
            # kmod's, but no request_module() here resolves to a module not already loaded).
            # A parallel load (ata_piix and ata_generic for one IDE modalias) must still record
            # each shared dependency once: "external" means nobody claimed an insertion.
            new = sorted(g.modules() - before_lkmd)
            wrong = {}
            for m in new:
                origin = info_json(g, m).get("origin")
                if origin not in ("coldplug", "hotplug"):
                    wrong[m] = origin
            expect(not wrong, f"inserted by lkmd but recorded as {wrong} "
                   f"(no Inserted line for them: "
                   f"{sorted(set(wrong) - {i[0] for i in inserted(g.lkmd_log(mark))})})")

        @s.scenario("what coldplug loaded, and lkmd still serves")
        def _():
            expect(lkmd_running(g), "lkmd is not running")
            loaded = g.modules()
            comment(f"loaded since boot: {' '.join(sorted(loaded - at_boot))}")
            by_origin: dict[str, list[str]] = {}
            for m, _, origin in inserted(g.lkmd_log(mark)):
                by_origin.setdefault(origin, []).append(m)
            for origin, mods in sorted(by_origin.items()):
                comment(f"Inserted ({origin}): {' '.join(mods)}")
            lkmctl(g, "status")


def g_origin(g: Guest, module: str) -> str:
    """usbhid and hid_generic come after the coldplug walk (their devices appear once
    xhci_pci is loaded): hotplug, unless lkmd's coldplug rescans. Either is right; what
    lkmd says is reported (anything else fails in expect_record)."""
    origin = info_json(g, module).get("origin")
    return origin if origin in ("coldplug", "hotplug") else "coldplug or hotplug"


if __name__ == "__main__":
    main()
