#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Soft dependencies that fail on this CPU must not stop a load (docs/kernel.md, "Soft
dependencies"): modprobe ignores them, and so must lkmd.

The guest runs qemu's default CPU model (qemu64 under TCG), which lacks SSE4.2: crc32c_intel's
init fails with ENODEV there. ext4 has `softdep pre: crypto-crc32c`, which resolves to
crc32c_intel and crc32c_generic; xfs, btrfs and erofs depend on libcrc32c. Once lkmd gave up the
whole load at crc32c_intel and `mount -t ext4` failed with ENODEV where kmod's modprobe succeeds.

kernel.modprobe points at lkmd-modprobe: every module below is loaded by lkmd.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from guest import LKMD_MODPROBE, Guest  # noqa: E402
from tap import Suite, comment, expect  # noqa: E402

EXT4_IMAGE = "/images/ext4.img"
BLANK_IMAGE = "/images/blank.img"
HELLO = "hello from ext4"
BLOCKED = ("xxhash_generic", "blake2b_generic")


def make_ext4_image(directory: Path) -> Path:
    """A small ext4 file system (mke2fs -d, no mount needed) holding hello.txt."""
    content = directory / "content"
    content.mkdir()
    (content / "hello.txt").write_text(HELLO + "\n")
    image = directory / "ext4.img"
    mke2fs = next((p for p in ("/usr/sbin/mke2fs", "/sbin/mke2fs") if os.path.exists(p)), "mke2fs")
    subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", str(content), str(image), "8M"],
                   check=True, capture_output=True, timeout=60)
    return image


def main() -> None:
    with Suite("softdeps") as s, tempfile.TemporaryDirectory() as tmp:
        guest = Guest(build_dir=s.build_dir, name="softdeps")
        guest.add_lkmd()
        guest.add_util_linux_mount()
        guest.add_file(EXT4_IMAGE, make_ext4_image(Path(tmp)))
        blank = Path(tmp) / "blank.img"
        with open(blank, "wb") as f:
            f.truncate(16 * 1024 * 1024)
        guest.add_file(BLANK_IMAGE, blank)
        # Soft dependencies of btrfs blocked the way distributions block modules: xxhash64's
        # module on 6.12, blake2b-256's on 6.1 (where xxhash64 is built in).
        guest.add_text("/etc/modprobe.d/softdeps.conf",
                       "".join(f"install {m} /bin/false\n" for m in BLOCKED))
        g = s.boot(guest)
        g.check("mkdir -p /mnt/e /mnt/x")
        flags = g.read_file("/proc/cpuinfo")
        comment(f"guest CPU has sse4_2: {'sse4_2' in flags}")
        g.set_modprobe(LKMD_MODPROBE)
        g.start_lkmd(["--coldplug=no"])

        def loaded() -> set[str]:
            return g.modules()

        def request(name: str) -> dict:
            entries = [r for r in json.loads(g.check("lkmctl --json requests"))
                       if r["request"] == name]
            expect(entries, f"lkmd has no request {name!r}")
            return entries[-1]

        @s.scenario("crc32c_intel refuses this CPU: the soft dependency fails on its own")
        def _():
            rc, out = g.run("/usr/sbin/insmod "
                            "$(/usr/sbin/modinfo -F filename crc32c_intel) 2>&1")
            comment(f"insmod crc32c_intel: exit {rc}: {out.strip()}")
            expect(rc != 0 and "crc32c_intel" not in loaded(),
                   "crc32c_intel loads on this CPU: the suite would prove nothing")

        @s.scenario("mount -t ext4 through lkmd: ext4 loads without crc32c_intel, the file reads")
        def _():
            out = g.check(f"mount -t ext4 -o loop {EXT4_IMAGE} /mnt/e && cat /mnt/e/hello.txt",
                          timeout=120)
            expect(HELLO in out, out)
            g.check("umount /mnt/e")
            mods = loaded()
            expect({"ext4", "jbd2", "mbcache"} <= mods, f"loaded: {sorted(mods)}")
            expect("crc32c_intel" not in mods, "crc32c_intel is loaded")
            r = request("fs-ext4")
            expect(r["result"] == "loaded" and "ext4" in r["modules"], f"fs-ext4: {r}")
            log = g.lkmd_log()
            expect("Could not insert 'crc32c_intel', a soft dependency of 'ext4'" in log,
                   "lkmd did not log the soft dependency it went on without")

        @s.scenario("lkmctl load btrfs: soft dependencies refused by an install command or by "
                    "the CPU are skipped, btrfs loads")
        def _():
            rc, out = g.run("lkmctl load btrfs 2>&1", timeout=120)
            expect(rc == 0, out)
            mods = loaded()
            expect("btrfs" in mods and not mods & set(BLOCKED), f"loaded: {sorted(mods)}")
            log = g.lkmd_log()
            skipped = sorted(set(re.findall(r"Could not insert '(\w+)', a soft dependency of "
                                            "'btrfs'", log)))
            comment(f"soft dependencies of btrfs skipped: {skipped}")
            expect(set(skipped) & set(BLOCKED),
                   f"lkmd did not log a soft dependency the install command refused ({BLOCKED})")

        @s.scenario("mount -t xfs, btrfs, f2fs, erofs of a blank image: each module loads, the "
                    "mount fails on the image, not with ENODEV")
        def _():
            results = {}
            for fs in ("xfs", "btrfs", "f2fs", "erofs"):
                rc, out = g.run(f"mount -t {fs} -o loop,ro {BLANK_IMAGE} /mnt/x 2>&1; "
                                "umount /mnt/x 2>/dev/null", timeout=120)
                results[fs] = out.strip()
                expect("unknown filesystem type" not in out, f"mount -t {fs}: {out}")
                expect(fs in loaded(), f"{fs} is not loaded after mount -t {fs}: {out}")
            comment("; ".join(f"{fs}: {msg}" for fs, msg in results.items()))

        @s.scenario("lkmctl load libcrc32c (a soft dependency of its own) succeeds")
        def _():
            if "libcrc32c" in loaded():
                g.check("rmmod xfs btrfs erofs 2>/dev/null; rmmod libcrc32c 2>/dev/null; true")
            rc, out = g.run("lkmctl load libcrc32c 2>&1", timeout=120)
            expect(rc == 0, out)
            expect("libcrc32c" in loaded(), "libcrc32c is not loaded")

        @s.scenario("lkmd survived")
        def _():
            expect(g.lkmd and g.lkmd.alive(), "lkmd died")


if __name__ == "__main__":
    main()
