#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Debian root filesystem (12 or 13) with systemd as PID 1, for tests of lkmd as a real service.

    deb = ensure_deb("trixie")               # scripts/build-deb, unless build-deb/ is fresh
    rootfs = get_rootfs(deb, "trixie")       # debootstrap once, cached
    with SystemdGuest(rootfs, build_dir="build", name="service") as g:   # systemd_guest.py
        g.add_file(...)                      # before entering: files copied into the root fs
        g.wait_running()                     # systemctl is-system-running --wait
        g.check("dpkg -i /var/cache/lkmd-test/lkmd.deb")

Two cached layers per release under the kernel's cache dir (LKMD_CACHE_DIR, default
<repo>/.cache/vm), here for bookworm:

    rootfs-bookworm/tree/        debootstrap --variant=minbase (root needed), ~280 MB
    rootfs-bookworm/tree.json    its stamp: the packages in it, how long it took
    rootfs-bookworm/debs/        debootstrap's --cache-dir: a rebuild downloads nothing again
    rootfs-bookworm/base-H.ext4  the tree plus the harness (agent unit, masks, user), made with
                                 `mke2fs -d` (no loop mount); H hashes what was added
    .rootfs.lock                 flock: one builder at a time

The tree holds the lkmd package's dependencies (read from the .deb's Depends): when a new .deb
needs a package the tree lacks, the tree is rebuilt with it. The archive's address comes from
the machine's own apt sources, as for the kernel (kernel.py). Each release boots its own kernel:
Debian 12 the one LKMD_VM_KERNEL selects (6.12 from bookworm-backports by default), Debian 13
its own 6.12 (kernel.py's flavour `trixie`).

Each guest boots the cached kernel with a small initramfs (busybox, kmod's insmod, virtio_blk,
ext4 and 9p with their dependencies) that mounts the base image through a throw-away qcow2
overlay (the base stays untouched, guests can run in parallel), mounts the kernel's module tree
over 9p at /lib/modules (the root fs has no kernel of its own: libkmod and lkmd must see the
booted kernel's modules), copies the guest's own files in, and switch_roots to systemd. The
harness talks to the command agent of guest.py, started by lkmd-test-agent.service on
/dev/ttyS1 early in boot (DefaultDependencies=no), so a hanging boot can still be inspected.

Why the package is installed by `dpkg -i` inside the booted guest: its maintainer scripts then
run as on a real machine. dh_installsystemd's code enables and starts the units through the
running systemd, the postinst's sysctl reaches the guest's kernel, and a purge can be tested
the same way. `dpkg --root` would run them in a chroot of the host (no systemd, the host's
/proc), and unpacking with `dpkg-deb -x` would test none of them.

udev's own module loading is off from the first boot: /etc/udev/rules.d/80-drivers.rules links
to /usr/share/lkmd/udev/80-drivers.rules as lkmd's README says, and each guest gets a copy of the
tree's file at that path until dpkg installs the package's (dpkg replaces a file no package
owns), so the link never dangles.

Run as a script it builds the .deb and the root fs and reports as TAP, so meson can do this
once before the guests start, outside their timeouts.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from debpkg import (  # noqa: E402,F401 (DebBuildError, ensure_deb: for the suites)
    HOST_RELEASE, RELEASES, DebBuildError, build_root_admindir, deb_depends, ensure_deb,
)
from guest import VM_LIB, _which, guest_file  # noqa: E402
from kernel import (  # noqa: E402
    KernelUnavailable, _FileLock, _main_archive, cache_dir, get_kernel, system_stanzas,
)

# The kernel flavour (kernel.py) each release boots; None: LKMD_VM_KERNEL's choice.
RELEASE_KERNELS = {"bookworm": None, "trixie": "trixie"}
# What the suites need besides lkmd's own dependencies (added from the .deb).
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "kmod", "udev", "iproute2", "util-linux", "procps",
    "dosfstools",
    # systemd-analyze verify checks the units' Documentation=man: pages with man.
    "man-db",
    # org.lkmd1.manage: unprivileged callers authorized by a polkit rule. polkitd needs a
    # logind, which libpam-systemd provides.
    "polkitd", "libpam-systemd",
    # lkmctl -H root@localhost: sd-bus runs ssh, and systemd-stdio-bridge on the far side.
    "openssh-server",
]
IMAGE_SIZE = "1G"
TREE_STAMP_VERSION = 1
DEBOOTSTRAP_TIMEOUT = 1800  # s
LOCK_TIMEOUT = 2400  # s: another test may be running debootstrap
TEST_USER = "tester"  # uid 1000, for the unprivileged calls
TEST_UID = 1000
DEB_GUEST_PATH = "/var/cache/lkmd-test/lkmd.deb"
# Before switch_root: the root disk, its file system, and the module tree's 9p share.
BOOT_MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4", "9pnet_virtio", "9p"]

# Units that cost boot time or could act in the middle of a test: consoles nobody logs in on,
# timers for daily maintenance.
MASKED_UNITS = [
    "getty@tty1.service", "serial-getty@ttyS0.service", "apt-daily.timer",
    "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
    "e2scrub_reap.service", "fstrim.timer", "man-db.timer",
]

HARNESS_FILES = {
    # guest path: (content, mode)
    # The agent of the initramfs guests, as a service started early in boot.
    f"{VM_LIB}/agent": (guest_file("agent"), 0o755),
    "/etc/systemd/system/lkmd-test-agent.service": (guest_file("lkmd-test-agent.service"), 0o644),
    "/etc/hostname": ("lkmd-vm\n", 0o644),
    "/etc/hosts": ("127.0.0.1 localhost\n127.0.1.1 lkmd-vm\n", 0o644),
    # The initramfs mounts / (through the qcow2 overlay) and /lib/modules (9p).
    "/etc/fstab": ("# / and /lib/modules are mounted by the test initramfs\n", 0o644),
    "/etc/systemd/journald.conf.d/lkmd-test.conf": (
        "[Journal]\nStorage=volatile\nRateLimitBurst=0\n", 0o644),
}
HARNESS_LINKS = {
    "/etc/systemd/system/sysinit.target.wants/lkmd-test-agent.service":
        "/etc/systemd/system/lkmd-test-agent.service",
    "/etc/udev/rules.d/80-drivers.rules": "/usr/share/lkmd/udev/80-drivers.rules",
    **{f"/etc/systemd/system/{unit}": "/dev/null" for unit in MASKED_UNITS},
}
IMAGE_RECIPE_VERSION = 1


class RootfsUnavailable(Exception):
    """The root fs cannot be built here (not root, no debootstrap, no archive)."""


def _log(msg: str) -> None:
    print(f"rootfs: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# the debootstrap tree


def _installed_packages(tree: Path) -> set[str]:
    names, name = set(), None
    try:
        text = (tree / "var" / "lib" / "dpkg" / "status").read_text(errors="replace")
    except OSError:
        return names
    for line in text.splitlines():
        if line.startswith("Package: "):
            name = line[9:].strip()
        elif line.startswith("Status: ") and line.endswith(" installed") and name:
            names.add(name)
    return names


def _mirror() -> tuple[str, str | None]:
    """(archive URI, keyring) of the machine's main Debian archive entry."""
    try:
        stanza = _main_archive(system_stanzas())
    except KernelUnavailable as e:
        raise RootfsUnavailable(str(e)) from None
    keyring = stanza.get("signed-by")
    if keyring and not os.path.isfile(keyring):
        keyring = None  # an inline key: debootstrap's default keyring applies
    return stanza["uris"].split()[0], keyring


@dataclasses.dataclass(frozen=True)
class Rootfs:
    release: str
    image: Path  # ext4, the read-only backing file of each guest's overlay
    packages: tuple[str, ...]
    debootstrap_seconds: float  # when the tree was built
    built_now: list[str]  # what this call had to build ("tree", "image")


def _load_tree_stamp(base: Path) -> dict | None:
    try:
        st = json.loads((base / "tree.json").read_text())
    except (OSError, ValueError):
        return None
    if st.get("stamp_version") != TREE_STAMP_VERSION or not (base / "tree" / "sbin").exists():
        return None
    return st


def _debootstrap(base: Path, packages: list[str], release: str) -> dict:
    if not shutil.which("debootstrap") and not os.path.exists("/usr/sbin/debootstrap"):
        raise RootfsUnavailable("debootstrap is not installed (scripts/install-deps)")
    mirror, keyring = _mirror()
    # The cached tree stays until its successor is complete: a failed rebuild costs no cache.
    tree, tmp = base / "tree", base / "tree.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (base / "debs").mkdir(parents=True, exist_ok=True)
    argv = [shutil.which("debootstrap") or "/usr/sbin/debootstrap", "--variant=minbase",
            "--include=" + ",".join(packages), f"--cache-dir={(base / 'debs').resolve()}"]
    if keyring:
        argv.append(f"--keyring={keyring}")
    argv += [release, str(tmp), mirror]
    _log(f"debootstrap {release} ({len(packages)} extra packages)")
    t0 = time.monotonic()
    with open(base / "debootstrap.log", "w") as log:
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT,
                               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except subprocess.TimeoutExpired:
            raise RootfsUnavailable(f"debootstrap took over {DEBOOTSTRAP_TIMEOUT} s") from None
    if p.returncode != 0:
        # debootstrap's own log names the failing package; dpkg's reasons are in the tree's.
        tail = (base / "debootstrap.log").read_text(errors="replace").splitlines()[-6:]
        inner = tmp / "debootstrap" / "debootstrap.log"
        if inner.is_file():
            dpkg = [line for line in inner.read_text(errors="replace").splitlines()
                    if line.startswith(("dpkg: ", " ")) and "depends on" in line
                    or line.startswith("dpkg: error")]
            tail += list(dict.fromkeys(dpkg))[-6:]
        # No archive (offline machine) is a reason to skip, as for the kernel.
        raise RootfsUnavailable(f"debootstrap failed (exit {p.returncode}):\n" + "\n".join(tail))
    seconds = time.monotonic() - t0
    (base / "tree.json").unlink(missing_ok=True)
    shutil.rmtree(tree, ignore_errors=True)
    tmp.rename(tree)
    stamp = {"stamp_version": TREE_STAMP_VERSION, "release": release,
             "packages": sorted(packages), "seconds": round(seconds, 1),
             "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (base / "tree.json").write_text(json.dumps(stamp, indent=1) + "\n")
    _log(f"debootstrap done in {seconds:.0f} s")
    return stamp


# --------------------------------------------------------------------------
# the base image


def _recipe_hash(tree_stamp: dict) -> str:
    recipe = json.dumps([IMAGE_RECIPE_VERSION, tree_stamp["built"], tree_stamp["packages"],
                         HARNESS_FILES, HARNESS_LINKS, TEST_USER, TEST_UID, IMAGE_SIZE],
                        sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _put(stage: Path, guest_path: str) -> Path:
    dst = stage / guest_path.lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    return dst


def _build_image(base: Path, image: Path) -> None:
    stage = base / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run(["cp", "-a", "--reflink=auto", str(base / "tree"), str(stage)], check=True,
                   timeout=600)
    for guest_path, (content, mode) in HARNESS_FILES.items():
        dst = _put(stage, guest_path)
        dst.write_text(content)
        dst.chmod(mode)
    for guest_path, target in HARNESS_LINKS.items():
        _put(stage, guest_path).symlink_to(target)
    # Static: runs the agent's plumbing (setsid, the watchdog's sh) as in the initramfs guests.
    shutil.copyfile(_which("busybox"), _put(stage, "/usr/bin/busybox"))
    (stage / "usr/bin/busybox").chmod(0o755)
    # A fixed machine-id: no first-boot logic (systemd-firstboot, ConditionFirstBoot=).
    _put(stage, "/etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    (stage / "usr/lib/modules").mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["useradd", "--root", str(stage), "--create-home", "--user-group",
                        "--uid", str(TEST_UID), "--shell", "/bin/sh", TEST_USER],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RootfsUnavailable(f"useradd {TEST_USER} failed: {p.stderr.strip()}")
    # man-db's trigger would rebuild its index on every dpkg -i (seconds under TCG).
    (stage / "var/lib/man-db/auto-update").unlink(missing_ok=True)
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (stage / sub).glob("*"):
            if f.is_file():
                f.unlink()
    tmp = image.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    p = subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "lkmd-root", "-d", str(stage),
                        str(tmp), IMAGE_SIZE], capture_output=True, text=True, timeout=600)
    shutil.rmtree(stage, ignore_errors=True)
    if p.returncode != 0:
        raise RootfsUnavailable(f"mke2fs -d failed: {(p.stdout + p.stderr).strip()}")
    tmp.rename(image)
    for old in base.glob("base-*.ext4"):
        if old != image:
            old.unlink()  # a running guest keeps its open backing file
    _log(f"{image.name} made in {time.monotonic() - t0:.1f} s")


def get_rootfs(deb: Path | None = None, release: str = HOST_RELEASE,
               extra_packages: list[str] | None = None) -> Rootfs:
    """The cached base image of `release`, built (debootstrap, then mke2fs -d) when missing or
    when the tree lacks a package that `deb` (built for that release) depends on."""
    if release not in RELEASE_KERNELS:
        raise RootfsUnavailable(f"no root fs for {release!r}")
    try:
        depends = deb_depends(deb, build_root_admindir(release)) if deb else []
    except DebBuildError as e:
        raise RootfsUnavailable(str(e)) from None
    wanted = list(dict.fromkeys(BASE_PACKAGES + (extra_packages or []) + depends))
    base = cache_dir() / f"rootfs-{release}"
    built: list[str] = []
    try:
        base.mkdir(parents=True, exist_ok=True)
        lock = _FileLock(cache_dir() / ".rootfs.lock", LOCK_TIMEOUT)
        lock.__enter__()
    except (KernelUnavailable, OSError) as e:
        raise RootfsUnavailable(str(e)) from None
    try:
        stamp = _load_tree_stamp(base)
        missing = set(wanted) - _installed_packages(base / "tree") if stamp else set(wanted)
        image = base / f"base-{_recipe_hash(stamp)}.ext4" if stamp and not missing else None
        if (not image or not image.is_file()) and os.geteuid() != 0:
            raise RootfsUnavailable("building the root fs needs root (debootstrap, mke2fs -d)")
        if not stamp or missing:
            if stamp:
                _log(f"the cached tree lacks {' '.join(sorted(missing))}: rebuilding it")
            packages = sorted(set(wanted) | set(stamp["packages"] if stamp else []))
            stamp = _debootstrap(base, packages, release)
            built.append("tree")
        image = base / f"base-{_recipe_hash(stamp)}.ext4"
        if not image.is_file():
            _build_image(base, image)
            built.append("image")
    finally:
        lock.__exit__(None, None, None)
    return Rootfs(release=release, image=image, packages=tuple(stamp["packages"]),
                  debootstrap_seconds=stamp["seconds"], built_now=built)


def main() -> int:
    """Build the .deb and the root fs (and fetch a release's own kernel); report them as TAP
    test points."""
    ap = argparse.ArgumentParser(description="Build lkmd's .deb and the systemd guest's root fs "
                                 "(TAP output)")
    ap.add_argument("--build-dir", help="accepted for uniformity with the VM suites; unused")
    ap.add_argument("--release", choices=RELEASES, default=HOST_RELEASE)
    release = ap.parse_args().release
    required = os.environ.get("LKMD_VM_REQUIRE") == "1"
    flavour = RELEASE_KERNELS[release]
    t0 = time.monotonic()
    try:
        deb = ensure_deb(release)
    except DebBuildError as e:
        print("1..2")
        print(f"not ok 1 - scripts/build-deb for {release}")
        for line in str(e).splitlines():
            print(f"# {line}")
        print("not ok 2 - root fs # SKIP no .deb")
        return 1
    deb_seconds = time.monotonic() - t0
    t0 = time.monotonic()
    try:
        r = get_rootfs(deb, release)
        rootfs_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        # The release's own kernel, fetched here like the default one by kernel.py's test.
        k = get_kernel(flavour) if flavour else None
    except (RootfsUnavailable, KernelUnavailable) as e:
        print(f"1..0 # SKIP {release} root fs or kernel unavailable: {str(e).splitlines()[0]}")
        for line in str(e).splitlines()[1:]:
            print(f"# {line}")
        return 1 if required else 0
    print("1..3" if k else "1..2")
    print(f"ok 1 - {release}: {deb} ({deb_seconds:.0f} s)")
    print(f"ok 2 - {release} root fs {r.image.name}, {len(r.packages)} packages "
          f"({rootfs_seconds:.0f} s; built now: {', '.join(r.built_now) or 'nothing'}; "
          f"debootstrap took {r.debootstrap_seconds:.0f} s)")
    if k:
        print(f"ok 3 - {release} kernel {k.package} {k.version} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
