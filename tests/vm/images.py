# SPDX-License-Identifier: LGPL-2.1-or-later
"""Files made on the host for the guest: FAT and NTFS disk images, static C programs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from guest_errors import GuestError


def make_vfat_image(path: Path, size_mib: int = 4, files: dict[str, bytes] | None = None,
                    label: str = "LKMDTEST") -> Path:
    """A FAT image (mkfs.vfat -C), optionally with files copied in by mtools."""
    path = Path(path)
    path.unlink(missing_ok=True)
    mkfs = shutil.which("mkfs.vfat") or "/usr/sbin/mkfs.vfat"
    if not os.path.exists(mkfs):
        raise GuestError("mkfs.vfat not found (install dosfstools)")
    subprocess.run([mkfs, "-C", "-n", label, str(path), str(size_mib * 1024)],
                   check=True, capture_output=True, timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in (files or {}).items():
            src = Path(tmp) / "f"
            src.write_bytes(content)
            subprocess.run(["mcopy", "-i", str(path), "-o", str(src), "::/" + name.lstrip("/")],
                           check=True, capture_output=True, timeout=60,
                           env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return path


def make_ntfs_image(path: Path, size_mib: int = 8, label: str = "LKMDNTFS") -> Path:
    """An empty NTFS image, made by ntfs-3g's mkntfs on a plain file."""
    path = Path(path)
    path.unlink(missing_ok=True)
    mkntfs = shutil.which("mkntfs") or "/usr/sbin/mkntfs"
    if not os.path.exists(mkntfs):
        raise GuestError("mkntfs not found (install ntfs-3g)")
    with open(path, "wb") as f:
        f.truncate(size_mib * 1024 * 1024)
    p = subprocess.run([mkntfs, "-F", "-Q", "-q", "-L", label, str(path)],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise GuestError(f"mkntfs {path} failed: {(p.stdout + p.stderr).strip()}")
    return path


def compile_static(source: str | Path, out: Path, cflags: list[str] | None = None) -> Path:
    """Build a C program as a static binary (`cc -static -O2`): it then runs
    in the guest without libraries. `source` is a file or the C text itself."""
    out = Path(out)
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise GuestError("no C compiler on the host (install gcc)")
    if isinstance(source, Path):
        src = source
    else:
        src = out.with_suffix(".c")
        src.write_text(source)
    p = subprocess.run([cc, "-static", "-O2", "-Wall", "-o", str(out), str(src), *(cflags or [])],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise GuestError(f"cc -static {src} failed:\n{p.stdout}{p.stderr}")
    return out
