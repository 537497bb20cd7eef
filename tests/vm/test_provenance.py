#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Who caused each load, on Debian's real kernel (docs/kernel.md, "Who asked").

lkmd reads module:module_request from its own tracefs instance and /proc of the waiting
requester. The guest mounts tracefs at /sys/kernel/tracing (systemd does so on a real host);
kernel.modprobe points at lkmd-modprobe. Records are read from the bus (GetModule,
ListRequests, the Metrics property) with busctl, as any client would.

Copy Fail's trigger (CVE-2026-31431) is an unprivileged AF_ALG bind of "aead" from inside a
user namespace: the scenario that shows lkmd names that user, the program and the namespace.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from guest import LKMD_MODPROBE, Guest  # noqa: E402
from plug import add_nic, as_user, lkmd_running, pci_dev, wait_bound  # noqa: E402
from tap import Suite, comment, expect  # noqa: E402

VMTOOLS = "/usr/bin/lkmd-vmtools"
IMAGE = "/images/vfat0.img"
METRICS_DIR = "/run/node-exporter"
LKMD_ARGS = ["--coldplug=no", f"--metrics-dir={METRICS_DIR}"]
NIC_SLOT = 0x6


def main() -> None:
    with Suite("provenance") as s:
        guest = Guest(build_dir=s.build_dir, name="provenance")
        guest.add_lkmd()
        guest.add_util_linux_mount()
        guest.add_binary("/usr/bin/setpriv", "/usr/bin/setpriv")
        guest.add_binary("/usr/bin/unshare", "/usr/bin/unshare")
        guest.add_binary("/usr/bin/busctl", "/usr/bin/busctl")
        guest.add_iproute2()
        guest.add_c_program(VMTOOLS, Path(__file__).resolve().parent / "vmtools.c")
        guest.add_vfat_image(IMAGE, size_mib=1)
        # tcrypt's init looks rmd160 up: the kernel asks crypto-rmd160 from inside lkmd's
        # insertion of tcrypt (which then fails on purpose, -EAGAIN).
        guest.add_text("/etc/modprobe.d/tcrypt.conf", "options tcrypt alg=rmd160 type=14\n")
        g = s.boot(guest)
        g.check("mkdir -p /mnt/v " + METRICS_DIR)
        g.check("mount -t tracefs tracefs /sys/kernel/tracing")
        g.set_modprobe(LKMD_MODPROBE)
        g.start_lkmd(LKMD_ARGS)

        def call(method: str, *args: str) -> object:
            signature = "s" * len(args)
            out = g.check("busctl --system --json=short call org.lkmd1 /org/lkmd1 "
                          f"org.lkmd1.Manager {method} {signature} "
                          + " ".join(f"'{a}'" for a in args))
            return json.loads(out)["data"]

        def flat(record: dict) -> dict:
            return {key: value["data"] for key, value in record.items()}

        def module(name: str) -> dict:
            return flat(call("GetModule", name)[0])

        def requests() -> list[dict]:
            return [flat(r) for r in call("ListRequests")[0]]

        def last_request(name: str) -> dict:
            found = [r for r in requests() if r["Request"] == name]
            expect(found, f"lkmd has no request {name!r}")
            return found[-1]

        ARROW = "(?:←|<-)"  # lkmctl why: "←" in a UTF-8 locale

        def who(record: dict) -> str:
            keys = ("RequesterKnown", "RequesterPid", "RequesterComm", "RequesterUid",
                    "RequesterUnit", "RequesterUserNamespace", "RequesterCallSite",
                    "RequesterFromInitOf", "RequesterUnknownBecause")
            return ", ".join(f"{k[9:]}={record.get(k)!r}" for k in keys if record.get(k) not in
                             ("", None))

        @s.scenario("lkmd reads module_request from its own tracefs instance")
        def _():
            expect(g.exists("/sys/kernel/tracing/instances/lkmd"), "no instances/lkmd")
            enabled = g.read_file("/sys/kernel/tracing/instances/lkmd/events/module/"
                                  "module_request/enable").strip()
            expect(enabled == "1", f"module_request enable is {enabled!r}")
            top = g.read_file("/sys/kernel/tracing/events/module/module_request/enable").strip()
            expect(top == "0", "lkmd switched the global trace's event on")

        @s.scenario("Copy Fail's trigger: uid 1000 in a user namespace binds AF_ALG 'aead'; lkmd "
                    "names the uid, the program, its pid, the namespace and the call site")
        def _():
            out = g.check(f"sh -c 'echo pid=$$; exec {as_user(1000)} /usr/bin/unshare -Urn "
                          f"{VMTOOLS} algbind aead \"gcm(aes)\"' 2>&1")
            pid = int(re.search(r"pid=(\d+)", out).group(1))
            comment(f"{out.strip()}")
            expect("algif_aead" in g.modules(), f"algif_aead not loaded: {out}")
            m = module("algif_aead")
            comment("algif_aead: " + who(m))
            expect(m["Origin"] == "kernel" and m["Trigger"] == "algif-aead", f"{m}")
            expect(m["RequesterKnown"] is True, who(m))
            expect(m["RequesterPid"] == pid, f"pid {m['RequesterPid']}, the binder was {pid}")
            expect(m["RequesterUid"] == 1000, who(m))
            expect(m["RequesterComm"] == "lkmd-vmtools", who(m))
            expect(m["RequesterExe"] == VMTOOLS, f"exe {m['RequesterExe']!r}")
            expect(m["RequesterUserNamespace"] == "other", who(m))
            expect("alg_bind" in m["RequesterCallSite"], f"call site {m['RequesterCallSite']!r}")
            # What an administrator reads: lkmctl why, and requests filtered by that uid.
            why = g.check("lkmctl --no-pager why algif_aead").strip()
            comment("lkmctl why algif_aead: " + why)
            expect(re.fullmatch(rf"algif_aead {ARROW} algif-aead {ARROW} pid {pid} 'lkmd-vmtools' "
                                r"uid 1000 (\(\S+\) )?in a user namespace, called from "
                                r"\S*alg_bind( \[af_alg\])?", why), f"lkmctl why algif_aead: {why!r}")
            listed = json.loads(g.check("lkmctl --json=short requests --uid=1000"))
            # The bind may also make the kernel ask for its crypto algorithm, as the same uid.
            expect("algif-aead" in [r["request"] for r in listed] and
                   all(r["requester_uid"] == 1000 for r in listed), f"requests --uid=1000: {listed}")
            expect(not json.loads(g.check("lkmctl --json=short requests --uid=1001")),
                   "requests --uid=1001 lists requests uid 1001 never made")

        @s.scenario("mount -t vfat: fat is a dependency of vfat for fs-vfat, asked by 'mount' "
                    "from get_fs_type")
        def _():
            out = g.check(f"sh -c 'echo pid=$$; exec /usr/bin/mount -t vfat -o loop {IMAGE} "
                          "/mnt/v' 2>&1")
            pid = int(re.search(r"pid=(\d+)", out).group(1))
            fat, vfat = module("fat"), module("vfat")
            comment("fat: " + who(fat))
            expect(fat["NeededAs"] == "dependency" and fat["NeededBy"] == "vfat", f"{fat}")
            expect(vfat["NeededAs"] == "requested" and fat["Trigger"] == "fs-vfat", f"{vfat}")
            for m in (fat, vfat):
                expect(m["RequesterPid"] == pid and m["RequesterComm"] == "mount", who(m))
                expect(m["RequesterCallSite"] == "get_fs_type", who(m))
                expect(m["RequesterUid"] == 0 and m["RequesterUserNamespace"] == "initial",
                       who(m))
            why = g.check("lkmctl --no-pager why fat").strip()
            comment("lkmctl why fat: " + why)
            expect(re.fullmatch(rf"fat {ARROW} dependency of vfat {ARROW} fs-vfat {ARROW} pid {pid} 'mount' uid 0"
                                r"( \(\S+\))?, called from get_fs_type", why),
                   f"lkmctl why fat: {why!r}")
            g.check("umount /mnt/v")

        @s.scenario("two users ask for one AF_ALG type at once: one insertion, both recorded")
        def _():
            tried = []
            for kind, alg, module_name in (("skcipher", "cbc(aes)", "algif_skcipher"),
                                           ("hash", "sha256", "algif_hash"),
                                           ("rng", "stdrng", "algif_rng")):
                mark = g.lkmd_log_size()
                g.check("rm -f /run/go; for u in 1000 1001; do "
                        "( while [ ! -e /run/go ]; do :; done; "
                        "exec /usr/bin/setpriv --reuid=$u --regid=$u --clear-groups "
                        f"{VMTOOLS} algbind {kind} '{alg}' ) "
                        "> /run/bind-$u.log 2>&1 & done; sleep 0.3; touch /run/go; wait")
                asked = [r for r in requests() if r["Request"] == f"algif-{kind}"]
                uids = sorted(r["RequesterUid"] for r in asked)
                inserted = g.lkmd_log(mark).count(f"Inserted '{module_name}'")
                tried.append(f"algif-{kind}: {len(asked)} requests by uids {uids}, "
                             f"{inserted} insertion(s)")
                expect(inserted == 1, tried[-1])
                if uids == [1000, 1001]:
                    break
            comment("; ".join(tried))
            expect(uids == [1000, 1001], "never both at once: " + "; ".join(tried))

        @s.scenario("a request from inside the init of tcrypt names tcrypt")
        def _():
            g.run("lkmctl load tcrypt", timeout=200)  # its init fails on purpose
            r = last_request("crypto-rmd160")
            comment("crypto-rmd160: " + who(r))
            expect(r["RequesterFromInitOf"] == "tcrypt", who(r))

        @s.scenario("hotplug names the device and its subsystem; lkmctl load names root and "
                    "lkmctl")
        def _():
            nic = pci_dev(NIC_SLOT)
            add_nic(g, "e1000", "nic1", NIC_SLOT)
            wait_bound(g, nic, "e1000", 30)
            m = module("e1000")
            expect(m["Origin"] == "hotplug" and m["Device"] == nic and m["Subsystem"] == "pci",
                   f"{m}")
            why = g.check("lkmctl --no-pager why e1000").strip()
            expect(re.search(rf" {ARROW} hotplug of {re.escape(nic)} \(pci\)$", why),
                   f"lkmctl why e1000: {why!r}")
            g.check("lkmctl load dummy")
            d = module("dummy")
            comment("dummy: " + who(d))
            expect(d["RequesterUid"] == 0 and d["RequesterComm"] == "lkmctl", who(d))
            expect(d["RequesterCallSite"] == "D-Bus LoadModule", who(d))

        @s.scenario("the Metrics property and lkmd.prom count what ListRequests lists")
        def _():
            listed = Counter((r["Origin"], r["Result"]) for r in requests())
            g.check("sleep 1.5")  # published at most once a second
            out = g.check("busctl --system --json=short get-property org.lkmd1 /org/lkmd1 "
                          "org.lkmd1.Manager Metrics")
            metrics = json.loads(out)["data"]
            counted = Counter()
            for series, value in metrics.items():
                m = re.fullmatch(r'lkmd_requests_total\{origin="(\w+)",result="([\w-]+)"\}',
                                 series)
                if m:
                    counted[(m.group(1), m.group(2))] = int(value)
            expect(counted == listed, f"Metrics {dict(counted)} != ListRequests {dict(listed)}")
            prom = g.read_file(f"{METRICS_DIR}/lkmd.prom")
            for (origin, result), n in listed.items():
                line = f'lkmd_requests_total{{origin="{origin}",result="{result}"}} {n}'
                expect(line in prom, f"lkmd.prom lacks {line!r}:\n{prom}")
            expect("# TYPE lkmd_request_duration_seconds histogram" in prom, prom)

        @s.scenario("tracefs unmounted: requests are still served, the requester is 'unknown' "
                    "and why")
        def _():
            g.stop_lkmd()
            g.check("umount /sys/kernel/tracing")
            g.start_lkmd(LKMD_ARGS)
            g.check("rmmod dummy && ip link add d9 type dummy && ip link del d9")
            r = last_request("rtnl-link-dummy")
            comment("rtnl-link-dummy: " + who(r))
            expect(r["Result"] == "loaded", f"{r}")
            expect(r["RequesterKnown"] is False and
                   "tracefs unavailable" in r["RequesterUnknownBecause"], who(r))

        @s.scenario("lkmd survived")
        def _():
            expect(lkmd_running(g), "lkmd died")


if __name__ == "__main__":
    main()
