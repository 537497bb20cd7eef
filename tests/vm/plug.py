# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers for the hotplug and coldplug suites (and bench/coldplug.py): QMP device plugging,
sysfs driver bindings, lkmctl's module records and lkmd's "Inserted" log lines.

What was measured on Debian's 6.12 under TCG (`-machine pc`, see tests/vm/README.md):
- a PCI device hot-added at addr=0xN appears at /devices/pci0000:00/0000:00:0N.0 and its
  driver is bound 0.4-0.8 s after device_add when the module is loaded;
- device_del answers at once, the guest ejects through ACPI and QMP then sends DEVICE_DELETED
  with data {"device": ID, "path": ...};
- virtio_pci is built into 6.12: a virtio-*-pci device gets bound at once and its child
  virtioN carries the modalias (virtio:d00000001v00001AF4 for virtio-net);
- on qemu-xhci (at 00:04.0) usb-storage lands on usb2 (SuperSpeed root hub) and usb-kbd on
  usb1; the interfaces (e.g. 2-1:1.0) carry the usb: modalias, the devices (2-1) are bound to
  usbcore's generic "usb" driver at once.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from typing import Callable

from guest import Guest
from tap import expect

INSERTED = re.compile(r"Inserted '([^']+)' for '([^']*)' \((\w+)\)")


def as_user(uid: int) -> str:
    """The prefix that runs a guest command as uid (setpriv, which the suite puts in the guest)."""
    return f"/usr/bin/setpriv --reuid={uid} --regid={uid} --clear-groups"


def pci_dev(slot: int) -> str:
    """The sysfs device path (without /sys) of a PCI device on bus 0 of `-machine pc`."""
    return f"/devices/pci0000:00/0000:00:{slot:02x}.0"


def wait_until(g: Guest, condition: str, seconds: float, interval: float = 0.1) -> bool:
    """Poll a shell condition in the guest (one agent round trip); False on timeout."""
    n = max(1, int(seconds / interval))
    rc, _ = g.run(f"i=0; while [ $i -lt {n} ]; do if {condition}; then exit 0; fi; "
                  f"sleep {interval}; i=$((i+1)); done; exit 1", timeout=seconds + 15)
    return rc == 0


def eventually(check: Callable[[], object], seconds: float = 10, interval: float = 0.3):
    """Retry an asserting function until it passes; re-raise its last failure."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def bound_driver(g: Guest, devpath: str) -> str | None:
    """The name of the driver bound to /sys{devpath}, or None."""
    rc, out = g.run(f"readlink /sys{devpath}/driver")
    return out.strip().rsplit("/", 1)[-1] if rc == 0 and out.strip() else None


def wait_bound(g: Guest, devpath: str, driver: str, seconds: float = 20) -> None:
    """Wait until `driver` is bound to /sys{devpath}; fail saying what is bound instead."""
    if wait_until(g, f"[ \"$(readlink /sys{devpath}/driver 2>/dev/null | sed 's|.*/||')\" "
                     f"= {shlex.quote(driver)} ]", seconds):
        return
    raise AssertionError(f"{devpath}: driver {driver!r} not bound after {seconds:g} s "
                         f"(bound: {bound_driver(g, devpath)!r}; loaded: {sorted(g.modules())})")


def modalias(g: Guest, devpath: str) -> str:
    return g.read_file(f"/sys{devpath}/modalias").strip()


def find_child(g: Guest, devpath: str, pattern: str, seconds: float = 20) -> str:
    """The devpath of the first child of /sys{devpath} whose name matches the glob `pattern`
    (e.g. "virtio*"), waiting for it to appear."""
    ok = wait_until(g, f"ls -d /sys{devpath}/{pattern} >/dev/null 2>&1", seconds)
    expect(ok, f"no {pattern} under {devpath} after {seconds:g} s")
    out = g.check(f"ls -d /sys{devpath}/{pattern} | head -n 1").strip()
    return out[len("/sys"):]


def usb_interface(g: Guest, modalias_fragment: str, seconds: float = 20) -> str:
    """The devpath of the USB interface whose modalias contains the fragment (e.g.
    "ic08isc06ip50" for usb-storage), once it exists."""
    cond = (f"grep -l {shlex.quote(modalias_fragment)} /sys/bus/usb/devices/*/modalias "
            f">/dev/null 2>&1")
    expect(wait_until(g, cond, seconds),
           f"no USB interface with modalias *{modalias_fragment}* after {seconds:g} s:\n"
           + g.run("grep -H . /sys/bus/usb/devices/*/modalias")[1])
    f = g.check(f"grep -l {shlex.quote(modalias_fragment)} /sys/bus/usb/devices/*/modalias "
                "| head -n 1").strip()
    return g.check(f"readlink -f {shlex.quote(f.rsplit('/', 1)[0])}").strip()[len("/sys"):]


# ---------------------------------------------------------------- QMP

_netdevs = 0


def add_nic(g: Guest, driver: str, dev_id: str, slot: int) -> str:
    """device_add a NIC (with its own user-mode netdev) at 00:slot.0; its devpath."""
    global _netdevs
    _netdevs += 1
    net = f"hpnet{_netdevs}"
    g.qmp("netdev_add", type="user", id=net)
    g.qmp("device_add", driver=driver, id=dev_id, netdev=net, addr=f"0x{slot:x}")
    return pci_dev(slot)


def add_pci(g: Guest, driver: str, dev_id: str, slot: int) -> str:
    g.qmp("device_add", driver=driver, id=dev_id, addr=f"0x{slot:x}")
    return pci_dev(slot)


def remove_device(g: Guest, dev_id: str, devpath: str | None = None, seconds: float = 30) -> None:
    """device_del, wait for QMP's DEVICE_DELETED and for /sys{devpath} to go."""
    g.qmp("device_del", id=dev_id)
    g.wait_qmp_event("DEVICE_DELETED", timeout=seconds, device=dev_id)
    if devpath:
        expect(wait_until(g, f"! test -e /sys{devpath}", seconds),
               f"{devpath} still in sysfs after DEVICE_DELETED")


# ---------------------------------------------------------------- lkmd

def lkmctl(g: Guest, args: str, timeout: float = 60) -> str:
    return g.check(f"lkmctl {args} 2>&1", timeout=timeout)


def info_json(g: Guest, module: str) -> dict:
    out = lkmctl(g, f"--json info {shlex.quote(module)}")
    try:
        data = json.loads(out)
    except json.JSONDecodeError as e:
        raise AssertionError(f"lkmctl --json info {module} is not JSON ({e}): {out[:500]}") \
            from None
    expect(isinstance(data, dict), f"lkmctl --json info {module} is not an object: {out[:500]}")
    return data


def info_text(g: Guest, module: str) -> dict[str, str]:
    """`lkmctl info MODULE` as {field: value} ("Origin", "Trigger", "Device" ...)."""
    out = lkmctl(g, f"info {shlex.quote(module)}")
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key and key not in fields:
            fields[key] = value.strip()
    return fields


def expect_record(g: Guest, module: str, origin: str, trigger: str | None = None,
                  device: str | None = None, seconds: float = 10) -> dict:
    """lkmctl info (text and JSON) names `origin`, and `trigger`/`device` when given. Retried:
    lkmd records a load when the insertion returns, the device may be bound a bit earlier."""
    def check() -> dict:
        j = info_json(g, module)
        want = {"origin": origin}
        if trigger is not None:
            want["trigger"] = trigger
        if device is not None:
            want["device"] = device
        for key, value in want.items():
            expect(key in j, f"lkmctl --json info {module} has no key {key!r}: {j}")
            expect(j[key] == value, f"{module}: {key} is {j[key]!r}, expected {value!r}\n{j}")
        t = info_text(g, module)
        for key, value in want.items():
            label = key.capitalize()
            expect(t.get(label) == value,
                   f"lkmctl info {module}: '{label}:' is {t.get(label)!r}, expected {value!r}\n{t}")
        return j
    return eventually(check, seconds)


def inserted(log: str) -> list[tuple[str, str, str]]:
    """(module, trigger, origin) of every "Inserted 'M' for 'T' (O)" line."""
    return INSERTED.findall(log)


def expect_inserted_line(g: Guest, since: int, module: str, trigger: str, origin: str,
                         seconds: float = 10) -> None:
    def check() -> None:
        lines = inserted(g.lkmd_log(since))
        expect((module, trigger, origin) in lines,
               f"no log line \"Inserted '{module}' for '{trigger}' ({origin})\"; "
               f"Inserted lines since the action: {lines}")
    eventually(check, seconds)


def requests_json(g: Guest) -> list[dict] | None:
    """`lkmctl --json requests`, or None when lkmctl cannot give it."""
    rc, out = g.run("lkmctl --json requests 2>&1", timeout=60)
    if rc != 0:
        return None
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, list) else None


def new_entries(before: list[dict], after: list[dict]) -> list[dict]:
    seen: dict[str, int] = {}
    for r in before:
        k = json.dumps(r, sort_keys=True)
        seen[k] = seen.get(k, 0) + 1
    out = []
    for r in after:
        k = json.dumps(r, sort_keys=True)
        if seen.get(k):
            seen[k] -= 1
        else:
            out.append(r)
    return out


def lkmd_running(g: Guest) -> bool:
    return g.lkmd is not None and g.lkmd.alive()
