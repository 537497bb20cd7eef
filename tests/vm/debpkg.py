# SPDX-License-Identifier: LGPL-2.1-or-later
"""lkmd's .deb for the systemd guests: built from the tree by scripts/build-deb (on the host for
Debian 12, in the cached build root of scripts/build-root for Debian 13), rebuilt only when a
source file is newer, and its Depends turned into real package names for debootstrap."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from kernel import REPO_ROOT, _FileLock

HOST_RELEASE = "bookworm"  # what scripts/build-deb builds for without --release
RELEASES = ("bookworm", "trixie")
BUILD_DEB_TIMEOUT = 1800  # s: a cold build root takes a few minutes, then the build


class DebBuildError(Exception):
    """scripts/build-deb failed: a real failure, not a reason to skip."""


def _log(msg: str) -> None:
    print(f"debpkg: {msg}", file=sys.stderr, flush=True)


def _source_mtime(repo: Path) -> float:
    """The newest modification time among the files that go into the package. tests/ and
    bench/ are left out: they change often and put nothing into it."""
    skip = ("tests/", "bench/")
    try:
        out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True,
                             timeout=60).stdout
        names = [n.decode() for n in out.split(b"\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = []
        for dirpath, dirnames, filenames in os.walk(repo):
            rel = os.path.relpath(dirpath, repo)
            dirnames[:] = [d for d in dirnames if not (
                rel == "." and (d.startswith(("build", "obj-", ".")) or d in ("tests", "bench")))]
            names += [os.path.normpath(os.path.join(rel, f)) for f in filenames]
    newest = 0.0
    for name in names:
        if name.startswith(skip):
            continue
        try:
            newest = max(newest, (repo / name).lstat().st_mtime)
        except OSError:
            pass  # deleted in the work tree
    return newest


def _deb_version(repo: Path) -> str:
    first = (repo / "debian" / "changelog").read_text().splitlines()[0]
    m = re.match(r"^lkmd \(([^)]+)\)", first)
    if not m:
        raise DebBuildError(f"cannot read the version from debian/changelog: {first!r}")
    return m.group(1)


def deb_out_dir(release: str, repo: Path = REPO_ROOT) -> Path:
    """build-deb/ for Debian 12 (as scripts/build-deb without --release), build-deb/RELEASE/
    for the others."""
    return repo / "build-deb" if release == HOST_RELEASE else repo / "build-deb" / release


def ensure_deb(release: str = HOST_RELEASE, repo: Path = REPO_ROOT) -> Path:
    """The lkmd .deb of this tree for `release`: $LKMD_DEB_<RELEASE> (or $LKMD_DEB for Debian
    12) if set, else the one scripts/build-deb left in deb_out_dir(), rebuilt when any source
    file is newer."""
    if release not in RELEASES:
        raise DebBuildError(f"no package build for {release!r} (one of {', '.join(RELEASES)})")
    given = os.environ.get(f"LKMD_DEB_{release.upper()}") or (
        os.environ.get("LKMD_DEB") if release == HOST_RELEASE else None)
    if given:
        deb = Path(given)
        if not deb.is_file():
            raise DebBuildError(f"{deb} (from the environment) is not a file")
        return deb
    out_dir = deb_out_dir(release, repo)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    deb = out_dir / f"lkmd_{_deb_version(repo)}_{arch}.deb"
    with _FileLock(out_dir / ".lock", BUILD_DEB_TIMEOUT):
        if deb.is_file() and deb.stat().st_mtime >= _source_mtime(repo):
            return deb
        _log(f"building {release}'s {deb.name} with scripts/build-deb "
             f"(log: {out_dir / 'build.log'})")
        t0 = time.monotonic()
        env = dict(os.environ)
        # No -dbgsym package: nobody needs it here, and it costs time.
        env["DEB_BUILD_OPTIONS"] = " ".join(
            o for o in [env.get("DEB_BUILD_OPTIONS", ""), "noddebs"] if o)
        argv = [str(repo / "scripts" / "build-deb"), "--no-deps", "--out-dir", str(out_dir)]
        if release != HOST_RELEASE:
            argv += ["--release", release]
        with open(out_dir / "build.log", "w") as log:
            try:
                p = subprocess.run(argv, cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, timeout=BUILD_DEB_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise DebBuildError(f"scripts/build-deb took over {BUILD_DEB_TIMEOUT} s") from None
        if p.returncode != 0 or not deb.is_file():
            tail = (out_dir / "build.log").read_text(errors="replace").splitlines()[-40:]
            raise DebBuildError(f"scripts/build-deb failed (exit {p.returncode}):\n"
                                + "\n".join(tail))
        _log(f"{deb.name} for {release} built in {time.monotonic() - t0:.0f} s")
        return deb


def build_root_admindir(release: str, repo: Path = REPO_ROOT) -> str | None:
    """The dpkg database the .deb of `release` was built against: the host's for Debian 12,
    the build root's (scripts/build-root, cached by then) for the others."""
    if release == HOST_RELEASE:
        return None
    p = subprocess.run([str(repo / "scripts" / "build-root"), release], capture_output=True,
                       text=True, timeout=BUILD_DEB_TIMEOUT)
    if p.returncode != 0:
        raise DebBuildError(f"scripts/build-root {release} failed: {p.stderr.strip()}")
    return str(Path(p.stdout.strip().splitlines()[-1]) / "var" / "lib" / "dpkg")


def _dpkg_query(admindir: str | None, *args: str) -> str:
    argv = ["dpkg-query"] + ([f"--admindir={admindir}"] if admindir else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout


def _providers(admindir: str | None) -> dict[str, str]:
    """Virtual package name -> an installed package that provides it."""
    out = _dpkg_query(admindir, "-W", "-f", "${Package}\t${db:Status-Status}\t${Provides}\n")
    providers: dict[str, str] = {}
    for line in out.splitlines():
        package, status, provides = (line.split("\t") + ["", ""])[:3]
        if status != "installed":
            continue
        for p in provides.split(","):
            name = p.strip().split(" ")[0]
            if name:
                providers.setdefault(name, package)
    return providers


def deb_depends(deb: Path, admindir: str | None = None) -> list[str]:
    """Real package names for the .deb's Depends (first of each alternative, no versions).
    debootstrap cannot resolve a virtual name (libspdlog1.10-fmt9, default-dbus-system-bus):
    such a name becomes the package that provides it where the .deb was built (`admindir`,
    the host's dpkg database by default)."""
    field = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True,
                           text=True, check=True).stdout
    providers = None
    names = []
    for dep in field.split(","):
        name = dep.split("|")[0].strip().split(" ")[0].split(":")[0]
        if not name:
            continue
        if _dpkg_query(admindir, "-W", "-f", "${db:Status-Status}", name) != "installed":
            providers = providers if providers is not None else _providers(admindir)
            name = providers.get(name, name)
        names.append(name)
    return names
