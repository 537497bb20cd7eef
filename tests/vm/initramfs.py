# SPDX-License-Identifier: LGPL-2.1-or-later
"""The guest's initramfs: a staging tree packed as newc cpio without privileges, the ldd
closure of host programs, the dependency closure of kernel modules, and the files under
guest-files/ (the guest's /init, agent and configuration) with their @PLACEHOLDERS@ filled in."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from guest_errors import GuestError
from kernel import Kernel

GUEST_FILES = Path(__file__).resolve().parent / "guest-files"
AGENT_PORT = "/dev/ttyS1"
GUEST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
VM_LIB = "/usr/lib/lkmd-vm"  # guest dir for the agent and boot modules
DBUS_SOCKET = "/run/dbus/system_bus_socket"
DBUS_CONFIG = "/usr/share/dbus-1/system.conf"

# The modules /init must load before it can mount the module tree. Those
# built into the kernel (virtio_pci on 6.12) are skipped.
BOOT_MODULES = ["virtio_pci", "9pnet_virtio", "9p"]
KMOD_TOOLS = ["modprobe", "rmmod", "insmod", "lsmod", "modinfo", "depmod"]
# Real tools for busybox applets that exec a program: busybox would run its
# own applet of that name instead of searching PATH (see module doc).
HOST_TOOLS = {
    "/usr/bin/env": "/usr/bin/env",
    "/usr/bin/timeout": "/usr/bin/timeout",
    "/usr/bin/nohup": "/usr/bin/nohup",
    "/usr/bin/nice": "/usr/bin/nice",
    "/usr/bin/setsid": "/usr/bin/setsid",
    "/usr/bin/xargs": "/usr/bin/xargs",
    "/usr/bin/find": "/usr/bin/find",
}

_PLACEHOLDERS = {
    "@PATH@": GUEST_PATH,
    "@AGENT@": AGENT_PORT,
    "@VM_LIB@": VM_LIB,
    "@DBUS_SOCKET@": DBUS_SOCKET,
}


def guest_file(name: str) -> str:
    """guest-files/NAME with its placeholders replaced by the harness's paths."""
    text = (GUEST_FILES / name).read_text()
    for key, value in _PLACEHOLDERS.items():
        text = text.replace(key, value)
    return text


def ldd_closure(binary: Path) -> list[Path]:
    """Shared libraries `binary` needs, including the dynamic loader."""
    p = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        if "not a dynamic executable" in p.stdout + p.stderr:
            return []
        raise GuestError(f"ldd {binary} failed: {p.stderr.strip()}")
    libs = []
    for line in p.stdout.splitlines():
        if "not found" in line:
            raise GuestError(f"{binary}: library not found on the host: {line.strip()}")
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def module_closure(kernel: Kernel, names: list[str]) -> list[str]:
    """Module files (relative to the kmod dir) to insmod, dependencies first."""
    def norm(path: str) -> str:
        return re.sub(r"\.ko(\.\w+)?$", "", Path(path).name).replace("-", "_")

    deps: dict[str, tuple[str, list[str]]] = {}  # name: (file, dependency names)
    for line in (kernel.kmod_dir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[norm(mod)] = (mod, [norm(d) for d in rest.split()])
    builtin = {norm(l) for l in (kernel.kmod_dir / "modules.builtin").read_text().split()}
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in builtin or name in seen:
            return
        if name not in deps:
            raise GuestError(f"module {name} is neither built in nor in modules.dep")
        seen.add(name)
        for dep in deps[name][1]:
            visit(dep)
        order.append(deps[name][0])

    for n in names:
        visit(n)
    return order


def _newc_entry(name: str, mode: int, rdev: tuple[int, int] = (0, 0), data: bytes = b"") -> bytes:
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
    hdr += b"\0" * (-len(hdr) % 4)
    return hdr + data + b"\0" * (-len(data) % 4)


def _console_cpio() -> bytes:
    """A cpio segment holding /dev/console, so /init has stdio from its first
    line. The kernel accepts concatenated archives; this one is written
    here because creating a device node on disk would need privileges."""
    return _newc_entry("dev/console", 0o020600, rdev=(5, 1)) + _newc_entry("TRAILER!!!", 0)


class Initramfs:
    """A staging tree packed with `cpio -H newc -R 0:0`: no privileges needed."""

    def __init__(self, stage: Path):
        self.stage = stage
        self._libs: set[Path] = set()

    def _dst(self, guest_path: str) -> Path:
        if not guest_path.startswith("/"):
            raise GuestError(f"guest path must be absolute: {guest_path}")
        dst = self.stage / guest_path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        return dst

    def mkdir(self, guest_path: str, mode: int = 0o755) -> None:
        d = self._dst(guest_path)
        d.mkdir(exist_ok=True)
        d.chmod(mode)

    def file(self, guest_path: str, host_path: Path | str, mode: int | None = None) -> None:
        host_path = Path(host_path)
        if not host_path.is_file():
            raise GuestError(f"cannot add {guest_path}: {host_path} is not a file")
        dst = self._dst(guest_path)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        shutil.copyfile(host_path, dst)  # follows symlinks: we want the content
        dst.chmod(mode if mode is not None else host_path.stat().st_mode & 0o7777)

    def text(self, guest_path: str, content: str, mode: int = 0o644) -> None:
        dst = self._dst(guest_path)
        dst.write_text(content)
        dst.chmod(mode)

    def symlink(self, guest_path: str, target: str) -> None:
        dst = self._dst(guest_path)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        dst.symlink_to(target)

    def binary(self, guest_path: str, host_path: Path | str) -> None:
        """A dynamically linked program plus its ldd closure, at the same
        paths as on the host (the guest's ld.so searches the same dirs)."""
        self.file(guest_path, host_path, mode=0o755)
        for lib in ldd_closure(Path(host_path)):
            if lib not in self._libs:
                self._libs.add(lib)
                self.file(str(lib), lib.resolve(), mode=0o755)

    def pack(self, out: Path) -> None:
        files = subprocess.run(
            ["find", ".", "-mindepth", "1", "-print0"],
            cwd=self.stage, capture_output=True, check=True, timeout=60,
        ).stdout
        names = b"\0".join(sorted(files.split(b"\0")[:-1])) + b"\0"
        with open(out, "wb") as f:
            p = subprocess.run(
                ["cpio", "--null", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                cwd=self.stage, input=names, stdout=f, stderr=subprocess.PIPE, timeout=120,
            )
            if p.returncode != 0:
                raise GuestError(f"cpio failed: {p.stderr.decode(errors='replace')}")
            f.write(_console_cpio())


def _which(tool: str) -> str:
    path = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.path.exists(p)), None)
    if not path:
        raise GuestError(f"{tool} is not installed on the host")
    return path


def agent_initramfs(stage: Path, kernel: Kernel) -> Initramfs:
    """The agent guest's own files: /init, the agent, dash, busybox, kmod, D-Bus and the modules
    that mount the module tree. Guest.add_* put more in before it is packed."""
    ir = Initramfs(stage)
    for d in ("/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/mnt", "/lib/modules",
              "/etc", "/var", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        ir.mkdir(d)
    ir.symlink("/var/run", "../run")
    ir.text("/init", guest_file("init"), mode=0o755)
    ir.text(f"{VM_LIB}/agent", guest_file("agent"), mode=0o755)

    # Shell and basic tools: dash as /bin/sh, busybox for the rest.
    ir.binary("/bin/sh", "/bin/dash")
    ir.file("/bin/busybox", _which("busybox"), mode=0o755)
    applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    skip = set(KMOD_TOOLS) | {Path(p).name for p in HOST_TOOLS} | {"sh", "busybox"}
    for a in applets:
        if a not in skip:
            ir.symlink(f"/bin/{a}", "busybox")
    for guest_path, host_path in HOST_TOOLS.items():
        ir.binary(guest_path, host_path)

    # kmod's real tools.
    ir.binary("/usr/bin/kmod", _which("kmod"))
    for tool in KMOD_TOOLS:
        ir.symlink(f"/usr/sbin/{tool}", "../bin/kmod")
    ir.symlink("/sbin/modprobe", "/usr/sbin/modprobe")

    # D-Bus.
    ir.binary("/usr/bin/dbus-daemon", _which("dbus-daemon"))
    ir.binary("/usr/bin/dbus-send", _which("dbus-send"))
    ir.text(DBUS_CONFIG, guest_file("dbus-system.conf"))
    ir.mkdir("/usr/share/dbus-1/system.d")
    ir.mkdir("/etc/dbus-1")
    ir.mkdir("/etc/dbus-1/system.d")
    ir.text("/etc/machine-id", uuid.uuid4().hex + "\n", mode=0o444)
    ir.text("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    ir.text("/etc/group", "root:x:0:\nnogroup:x:65534:\n")
    ir.text("/etc/hostname", "lkmd-vm\n")

    # Modules needed to mount the module tree.
    mods = module_closure(kernel, BOOT_MODULES)
    for rel in mods:
        ir.file(f"{VM_LIB}/modules/{Path(rel).name}", kernel.kmod_dir / rel, mode=0o644)
    ir.text(f"{VM_LIB}/modules.order", "".join(Path(m).name + "\n" for m in mods))
    return ir
