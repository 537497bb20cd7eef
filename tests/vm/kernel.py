#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fetch, unpack and cache a Debian kernel package for the qemu test guest.

The default is the 6.12 kernel from bookworm-backports (it has ntfs3, which
the 6.1 kernel lacks); LKMD_VM_KERNEL=6.1 selects bookworm's own kernel, and
`trixie` Debian 13's own 6.12 (the trixie systemd guest asks for it by name).

apt runs with private sources, lists and cache under the cache dir, so the
machine's apt configuration and state are never touched. The archive's
address is copied at run time from the machine's own sources.

Cache layout (LKMD_CACHE_DIR, default <repo>/.cache/vm):
    .lock                    flock, serialises concurrent fetches
    apt-<flavour>/           private apt sources.list.d, lists, cache
    kernel-<flavour>/root/   dpkg-deb -x of the package, depmod'ed
    kernel-<flavour>/vmlinux ELF kernel extracted from vmlinuz
    kernel-<flavour>/stamp.json  written last: its presence means "complete"

Run as a script it fetches the kernel and reports as one TAP test point, so
meson can fetch once before the guests start (and outside their timeouts).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

FLAVOURS = {
    # flavour: (suite of the machine's main archive, or None for the machine's own suites;
    #           regex of acceptable packages)
    "6.12": ("bookworm-backports", re.compile(r"^linux-image-6\.12\.(\d+)\+deb12-amd64$")),
    "6.1": (None, re.compile(r"^linux-image-6\.1\.0-(\d+)-amd64$")),
    # Debian 13's own kernel, for the trixie systemd guest (rootfs.py).
    "trixie": ("trixie", re.compile(r"^linux-image-6\.12\.(\d+)\+deb13-amd64$")),
}
DEFAULT_FLAVOUR = "6.12"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
SOURCES_LIST = Path("/etc/apt/sources.list")

APT_TIMEOUT = 900  # s, for one apt-get run (the 6.12 package is ~100 MB)
LOCK_TIMEOUT = 1200  # s, waiting for a concurrent fetch to finish
STAMP_VERSION = 1


class KernelUnavailable(Exception):
    """The kernel could not be obtained (no network, no mirror, no package)."""


@dataclasses.dataclass(frozen=True)
class Kernel:
    flavour: str
    package: str
    version: str
    kver: str  # uname -r
    root: Path  # dpkg-deb -x destination
    vmlinux: Path  # ELF image, booted directly (PVH entry, no decompression)

    @property
    def modules_dir(self) -> Path:
        """<root>/lib/modules: the tree shared with the guest over 9p."""
        return self.root / "lib" / "modules"

    @property
    def kmod_dir(self) -> Path:
        """<root>/lib/modules/<kver>: modules.dep and friends."""
        return self.modules_dir / self.kver


def cache_dir() -> Path:
    env = os.environ.get("LKMD_CACHE_DIR")
    return Path(env) if env else REPO_ROOT / ".cache" / "vm"


def selected_flavour() -> str:
    flavour = os.environ.get("LKMD_VM_KERNEL", DEFAULT_FLAVOUR)
    if flavour not in FLAVOURS:
        # A typo is a configuration error, not a reason to skip quietly.
        raise ValueError(f"LKMD_VM_KERNEL={flavour!r} is not one of {', '.join(FLAVOURS)}")
    return flavour


# --------------------------------------------------------------------------
# apt sources


def _parse_deb822(text: str) -> list[dict[str, str]]:
    """Parse deb822 stanzas, keeping multi-line values (e.g. inline keys)."""
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
            continue
        if line[0] in " \t" and key:
            cur[key] += "\n" + line
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        cur[key] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def _parse_one_line(text: str) -> list[dict[str, str]]:
    """Convert one-line `deb [opts] URI suite comp...` entries to stanzas."""
    stanzas = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        opts = dict(
            o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o
        )
        stanza = {
            "types": "deb",
            "uris": m.group(2),
            "suites": m.group(3),
            "components": m.group(4) or "main",
        }
        if "signed-by" in opts:
            stanza["signed-by"] = opts["signed-by"]
        stanzas.append(stanza)
    return stanzas


def system_stanzas() -> list[dict[str, str]]:
    """The machine's Debian `deb` entries, deb822 first, one-line fallback."""
    stanzas: list[dict[str, str]] = []
    if DEBIAN_SOURCES.exists():
        stanzas = _parse_deb822(DEBIAN_SOURCES.read_text())
    if not stanzas and SOURCES_LIST.exists():
        stanzas = _parse_one_line(SOURCES_LIST.read_text())
    stanzas = [
        s
        for s in stanzas
        if "deb" in s.get("types", "").split()
        and s.get("uris")
        and s.get("enabled", "yes").lower() != "no"
    ]
    if not stanzas:
        raise KernelUnavailable(
            f"no Debian 'deb' source found in {DEBIAN_SOURCES} or {SOURCES_LIST}"
        )
    return stanzas


def _main_archive(stanzas: list[dict[str, str]]) -> dict[str, str]:
    """The entry serving the release itself (not -security, not -updates)."""
    for s in stanzas:
        if any("-" not in suite for suite in s.get("suites", "").split()):
            return s
    raise KernelUnavailable("no entry for the main Debian archive in the apt sources")


def _format_stanza(s: dict[str, str], suites: str | None = None) -> str:
    lines = [
        "Types: deb",
        f"URIs: {s['uris']}",
        f"Suites: {suites or s['suites']}",
        f"Components: {s.get('components', 'main')}",
        # Only the package indices: no Contents, no DEP-11 metadata.
        "Targets: Packages",
    ]
    if "signed-by" in s:
        lines.append(f"Signed-By: {s['signed-by']}")
    return "\n".join(lines) + "\n"


def sources_for(flavour: str) -> str:
    stanzas = system_stanzas()
    suite = FLAVOURS[flavour][0]
    if suite:
        return _format_stanza(_main_archive(stanzas), suites=suite)
    return "\n".join(_format_stanza(s) for s in stanzas)


# --------------------------------------------------------------------------
# apt with private state


class _PrivateApt:
    def __init__(self, base: Path, sources: str):
        self.base = base
        for sub in ("sources.list.d", "preferences.d", "lists/partial", "cache/archives/partial"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "sources.list.d" / "lkmd-vm.sources").write_text(sources)
        # Hooks of the machine's apt.conf.d (packagekit, docker-clean ...)
        # are about the system's state, not ours: clear them.
        (base / "apt.conf").write_text(
            "#clear APT::Update::Pre-Invoke;\n"
            "#clear APT::Update::Post-Invoke;\n"
            "#clear APT::Update::Post-Invoke-Success;\n"
        )

    def _args(self) -> list[str]:
        b = self.base
        opts = {
            "Dir::Etc::SourceList": "/dev/null",
            "Dir::Etc::SourceParts": b / "sources.list.d",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": b / "preferences.d",
            "Dir::State::Lists": b / "lists",
            "Dir::Cache": b / "cache",
            "Dir::Cache::pkgcache": b / "cache" / "pkgcache.bin",
            "Dir::Cache::srcpkgcache": b / "cache" / "srcpkgcache.bin",
            "Acquire::Languages": "none",
            "Acquire::Retries": "3",
            "Acquire::http::Timeout": "30",
        }
        if os.geteuid() == 0:
            # The _apt sandbox user cannot write into a root-owned cache dir.
            opts["APT::Sandbox::User"] = "root"
        args = ["-c", str(b / "apt.conf"), "-q"]
        for k, v in opts.items():
            args += ["-o", f"{k}={v}"]
        return args

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        cmd = [tool, *self._args(), *args]
        try:
            p = subprocess.run(
                cmd,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=APT_TIMEOUT,
            )
        except FileNotFoundError as e:
            raise KernelUnavailable(f"{tool} not found: {e}") from None
        except subprocess.TimeoutExpired:
            raise KernelUnavailable(
                f"{tool} {' '.join(args)} took longer than {APT_TIMEOUT} s"
            ) from None
        # apt-get update exits 0 even when fetching failed: look at what it said.
        failed = args[0] == "update" and re.search(r"^(Err:|E:|W: Failed to fetch)",
                                                    p.stdout + p.stderr, re.M)
        if p.returncode != 0 or failed:
            msgs = [l for l in (p.stdout + p.stderr).splitlines()
                    if l.startswith(("E:", "W:", "Err:", "  "))]
            raise KernelUnavailable(
                f"{tool} {' '.join(args)} failed (exit {p.returncode}):\n"
                + "\n".join((msgs or (p.stdout + p.stderr).splitlines())[-15:])
            )
        return p.stdout


def _resolve_package(apt: _PrivateApt, flavour: str) -> tuple[str, str]:
    """Return (package, version) of the newest kernel of that flavour."""
    pattern = FLAVOURS[flavour][1]
    if flavour == "6.1":
        # The metapackage names the current ABI of the stable kernel.
        show = apt.run("apt-cache", "show", "--no-all-versions", "linux-image-amd64")
        m = re.search(r"^Depends:\s*(linux-image-[^\s,(]+)", show, re.M)
        names = [m.group(1)] if m and pattern.match(m.group(1)) else []
    else:
        names = apt.run("apt-cache", "pkgnames", "linux-image-6.12.").split()
        names = sorted(
            (n for n in names if pattern.match(n)),
            key=lambda n: int(pattern.match(n).group(1)),
        )[-1:]
    if not names:
        raise KernelUnavailable(
            f"no package matching {pattern.pattern} in the {flavour} sources"
        )
    policy = apt.run("apt-cache", "policy", names[0])
    m = re.search(r"Candidate:\s*(\S+)", policy)
    if not m or m.group(1) == "(none)":
        raise KernelUnavailable(f"{names[0]} has no installable version")
    return names[0], m.group(1)


# --------------------------------------------------------------------------
# vmlinuz -> vmlinux


_MAGICS = [
    ("xz", b"\xfd7zXZ\x00"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("gzip", b"\x1f\x8b\x08"),
]


def _decompress(kind: str, data: bytes) -> bytes:
    """Decompress one stream, ignoring whatever trails it (like the kernel's
    scripts/extract-vmlinux does)."""
    try:
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(data)
        if kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    except (lzma.LZMAError, zlib.error, EOFError):
        return b""
    # zstd: Python 3.11's standard library has no zstd module; use the CLI.
    # It complains about trailing data but has written the stream by then.
    try:
        p = subprocess.run(
            ["zstd", "-dcq"], input=data, capture_output=True, timeout=120
        )
    except FileNotFoundError:
        raise KernelUnavailable("vmlinuz is zstd-compressed but zstd is not installed")
    return p.stdout


def extract_vmlinux(vmlinuz: Path, out: Path) -> None:
    data = vmlinuz.read_bytes()
    if data[:4] == b"\x7fELF":
        shutil.copyfile(vmlinuz, out)
        return
    for kind, magic in _MAGICS:
        pos = data.find(magic)
        # The magic bytes may also occur by chance: try each occurrence.
        while pos >= 0:
            elf = _decompress(kind, data[pos:])
            if elf[:4] == b"\x7fELF":
                out.write_bytes(elf)
                return
            pos = data.find(magic, pos + 1)
    raise KernelUnavailable(f"no compressed ELF image found in {vmlinuz}")


# --------------------------------------------------------------------------
# locking and the cached result


class _FileLock:
    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout = path, timeout

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise KernelUnavailable(
                        f"timed out after {self.timeout:.0f} s waiting for {self.path} "
                        "(another test fetching the kernel?)"
                    ) from None
                time.sleep(0.5)

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the flock


def _load_stamp(kdir: Path) -> Kernel | None:
    try:
        st = json.loads((kdir / "stamp.json").read_text())
    except (OSError, ValueError):
        return None
    if st.get("stamp_version") != STAMP_VERSION:
        return None
    k = Kernel(
        flavour=st["flavour"],
        package=st["package"],
        version=st["version"],
        kver=st["kver"],
        root=kdir / "root",
        vmlinux=kdir / "vmlinux",
    )
    if not (k.vmlinux.is_file() and (k.kmod_dir / "modules.dep").is_file()):
        return None
    return k


def _log(msg: str) -> None:
    # stdout may carry TAP: progress goes to stderr.
    print(f"kernel: {msg}", file=sys.stderr, flush=True)


def get_kernel(flavour: str | None = None) -> Kernel:
    """Return the cached kernel, downloading and unpacking it on first use."""
    flavour = flavour or selected_flavour()
    base = cache_dir()
    kdir = base / f"kernel-{flavour}"
    k = _load_stamp(kdir)
    if k:
        return k
    with _FileLock(base / ".lock", LOCK_TIMEOUT):
        # Someone else may have finished while we waited for the lock.
        k = _load_stamp(kdir)
        if k:
            return k
        return _fetch(flavour, base, kdir)


def _fetch(flavour: str, base: Path, kdir: Path) -> Kernel:
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "depmod"):
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            raise KernelUnavailable(f"{tool} is not installed")
    t0 = time.monotonic()
    apt = _PrivateApt(base / f"apt-{flavour}", sources_for(flavour))
    _log(f"updating private package lists for the {flavour} kernel")
    apt.run("apt-get", "update")
    package, version = _resolve_package(apt, flavour)
    _log(f"downloading {package} {version}")

    shutil.rmtree(kdir, ignore_errors=True)
    kdir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=base, prefix="download-") as tmp:
        apt.run("apt-get", "download", f"{package}={version}", cwd=Path(tmp))
        debs = list(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise KernelUnavailable(f"apt-get download left {debs} in {tmp}")
        _log(f"unpacking {debs[0].name}")
        root = kdir / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True, timeout=600)

    if not (root / "lib").exists() and (root / "usr" / "lib" / "modules").is_dir():
        # Debian 13's package installs under /usr only (merged /usr): give it the /lib that a
        # merged-/usr system has, so that Kernel's paths and `depmod -b` hold for both.
        (root / "lib").symlink_to("usr/lib")
    kvers = [p.name for p in (root / "lib" / "modules").iterdir() if p.is_dir()]
    if len(kvers) != 1:
        raise KernelUnavailable(f"expected one module tree in {package}, found {kvers}")
    kver = kvers[0]
    extract_vmlinux(root / "boot" / f"vmlinuz-{kver}", kdir / "vmlinux")
    depmod = shutil.which("depmod") or "/usr/sbin/depmod"
    subprocess.run([depmod, "-b", str(root), kver], check=True, timeout=600)
    (kdir / "stamp.json").write_text(
        json.dumps(
            {
                "stamp_version": STAMP_VERSION,
                "flavour": flavour,
                "package": package,
                "version": version,
                "kver": kver,
            },
            indent=1,
        )
        + "\n"
    )
    _log(f"{package} ready in {time.monotonic() - t0:.1f} s")
    k = _load_stamp(kdir)
    assert k, "kernel cache incomplete right after the fetch"
    return k


def main() -> int:
    """Fetch the kernel; report it as a single TAP test point."""
    ap = argparse.ArgumentParser(description="Fetch and cache the VM tests' kernel (TAP output)")
    ap.add_argument("--build-dir", help="accepted for uniformity with the VM suites; unused")
    ap.add_argument("--flavour", choices=sorted(FLAVOURS),
                    help="instead of $LKMD_VM_KERNEL (default %s)" % DEFAULT_FLAVOUR)
    args = ap.parse_args()
    try:
        t0 = time.monotonic()
        k = get_kernel(args.flavour)
    except KernelUnavailable as e:
        print(f"1..0 # SKIP kernel unavailable: {str(e).splitlines()[0]}")
        for line in str(e).splitlines()[1:]:
            print(f"# {line}")
        return 1 if os.environ.get("LKMD_VM_REQUIRE") == "1" else 0
    print("1..1")
    print(f"ok 1 - {k.package} {k.version} (uname -r {k.kver})")
    print(f"# cache: {k.root.parent} ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
