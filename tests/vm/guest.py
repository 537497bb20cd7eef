# SPDX-License-Identifier: LGPL-2.1-or-later
"""A qemu guest running Debian's real kernel, driven by a command agent.

    with Guest(build_dir="build") as g:
        g.check("/usr/sbin/modprobe dummy")
        rc, out = g.run("lsmod")

The guest boots the ELF vmlinux (PVH entry: no in-guest decompression) with a
small initramfs: busybox, dash as /bin/sh, kmod's real tools, dbus, the 9p
module closure, and whatever the caller adds. The kernel's full module tree
is mounted read-only over 9p at /lib/modules, so modprobe sees the real
alias database. Kernel messages go to ttyS0 (a log file); the agent talks
on ttyS1 (a unix socket), so printk noise never mixes into command output.

Why dash is /bin/sh: Debian's busybox prefers its own applets over PATH in
its shell *and* in applets that exec (env, timeout, xargs ...), so `lsmod`
would run busybox's lsmod even with kmod installed. dash honours PATH, and
coreutils/util-linux/findutils copies replace the exec-ing applets.

Loop devices: vfat images live in the initramfs (add_vfat_image) and are
mounted with `mount -o loop`. /init creates the on-demand device nodes
(`kmod static-nodes`, as systemd-tmpfiles does), so opening
/dev/loop-control makes the kernel ask for char-major-10-237 and `loop` is
loaded by whatever /proc/sys/kernel/modprobe names (kmod, or lkmd's helper).

The guest is not thread-safe: drive it from one thread.
"""

from __future__ import annotations

import base64
import ctypes
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kernel import Kernel, get_kernel

QEMU = "qemu-system-x86_64"
AGENT_PORT = "/dev/ttyS1"
GUEST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
VM_LIB = "/usr/lib/lkmd-vm"  # guest dir for the agent and boot modules
LKMD_LOG = "/run/lkmd.log"
LKMD_MODPROBE = "/usr/sbin/lkmd-modprobe"  # lkmd's kernel.modprobe helper
KMOD_MODPROBE = "/usr/sbin/modprobe"  # kmod's, what /init sets
DBUS_CONFIG = "/usr/share/dbus-1/system.conf"
DBUS_SOCKET = "/run/dbus/system_bus_socket"
BUS_NAME = "org.lkmd1"

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


class GuestError(Exception):
    """The guest could not be built, booted, or stopped answering."""


class QemuUnavailable(GuestError):
    """qemu is not installed: the VM tests cannot run on this machine."""


class BootError(GuestError):
    pass


class CommandTimeout(GuestError):
    def __init__(self, cmd: str, timeout: float, output: str):
        super().__init__(
            f"command timed out after {timeout:g} s: {cmd}\n--- output ---\n{output}"
        )
        self.cmd, self.timeout, self.output = cmd, timeout, output


class CommandFailed(AssertionError):
    """guest.check() saw a non-zero exit status."""

    def __init__(self, cmd: str, rc: int, output: str):
        super().__init__(f"command failed (exit {rc}): {cmd}\n--- output ---\n{output}")
        self.cmd, self.rc, self.output = cmd, rc, output


class QMPError(GuestError):
    pass


# --------------------------------------------------------------------------
# initramfs


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


# --------------------------------------------------------------------------
# guest-side scripts

INIT = r"""#!/bin/sh
# PID 1 of the lkmd test guest: mount the basics and the module tree, then
# serve the host's commands (see agent).
export PATH=@PATH@ HOME=/root TERM=dumb LANG=C.UTF-8

fail() {
    echo "init: $*" >&2
    echo "@@LKMD-FAIL $*" > @AGENT@
    poweroff -f
}

mount -t proc -o nosuid,nodev,noexec proc /proc
read -r up _ < /proc/uptime
printf '\ninit: started at %s s uptime\n' "$up" >&2
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
ln -sf /proc/self/fd /dev/fd
# As udev does. Also needed by kmod static-nodes below, whose default
# output is /dev/stdout: without the link it writes a regular file there.
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr

# No module requests until there is a module tree to serve them from.
echo > /proc/sys/kernel/modprobe
while read -r ko; do
    /usr/sbin/insmod "@VM_LIB@/modules/$ko" || fail "insmod $ko failed"
done < @VM_LIB@/modules.order
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 mods /lib/modules \
    || fail "cannot mount the module tree over 9p"
[ -f "/lib/modules/$(uname -r)/modules.dep" ] || fail "no modules.dep for $(uname -r)"
echo /usr/sbin/modprobe > /proc/sys/kernel/modprobe

# Device nodes that load their module when opened (loop-control, fuse,
# tun ...), as systemd-tmpfiles creates them from `kmod static-nodes`.
/usr/bin/kmod static-nodes --format=tmpfiles --output=/dev/stdout | while read -r type path mode u g a arg; do
    case $type in
        d*) mkdir -p "$path" ;;
        c*|b*) mknod -m "$mode" "$path" "${type%!}" "${arg%:*}" "${arg#*:}" ;;
    esac
done
[ -c /dev/loop-control ] || fail "kmod static-nodes made no /dev/loop-control"
hostname lkmd-vm
exec /bin/sh @VM_LIB@/agent
"""

AGENT = r"""#!/bin/sh
# Command agent. Requests arrive on @AGENT@, one per line:
#     ID TIMEOUT BASE64(script)
# Each script runs as `/bin/sh script` in its own session with stdout and
# stderr captured to a file; the reply is
#     @@LKMD-BEGIN ID / base64(output) / @@LKMD-END ID STATUS TIMEDOUT
# A watchdog kills the script's whole process group after TIMEOUT seconds.
W=/run/lkmd-vm-agent
mkdir -p $W
stty -F @AGENT@ raw -echo || echo "agent: stty failed" >&2
exec 3<>@AGENT@
read -r up _ < /proc/uptime
echo "init: agent ready on @AGENT@ at ${up} s uptime" >&2
echo "@@LKMD-READY $(uname -r)" >&3
while read -r id tmo script <&3; do
    case "$id$tmo" in ''|*[!0-9]*) continue ;; esac
    f=$W/$id
    printf '%s\n' "$script" | base64 -d > $f.sh
    # busybox setsid and sh for the plumbing: static binaries start ~50 ms
    # faster than dynamic ones under TCG.
    /bin/busybox setsid /bin/sh $f.sh < /dev/null > $f.out 2>&1 &
    pid=$!
    /bin/busybox setsid /bin/busybox sh -c \
        "sleep $tmo; : > $f.timeout; kill -KILL -$pid" < /dev/null > /dev/null 2>&1 &
    dog=$!
    # (2>/dev/null: dash would announce "Killed" jobs on the console)
    wait $pid 2> /dev/null
    rc=$?
    kill -s KILL -- -$dog 2> /dev/null
    wait $dog 2> /dev/null
    to=0
    [ -e $f.timeout ] && to=1
    { echo "@@LKMD-BEGIN $id"; base64 $f.out; echo "@@LKMD-END $id $rc $to"; } >&3
    rm -f $f.sh $f.out $f.timeout
done
echo "agent: lost @AGENT@" >&2
poweroff -f
"""

DBUS_SYSTEM_CONF = f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Test system bus: root only, no <user> switch, everyone may do anything
     unless a policy in system.d (e.g. lkmd's own) says otherwise. -->
<busconfig>
  <type>system</type>
  <listen>unix:path={DBUS_SOCKET}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
"""


def _subst(template: str) -> str:
    return (
        template.replace("@PATH@", GUEST_PATH)
        .replace("@AGENT@", AGENT_PORT)
        .replace("@VM_LIB@", VM_LIB)
    )


# --------------------------------------------------------------------------
# the guest


@dataclasses.dataclass
class GuestProcess:
    """A background process in the guest, started by Guest.spawn()."""

    guest: "Guest"
    pid: int
    log: str

    def alive(self) -> bool:
        # Not `kill -0`: that also succeeds for a zombie not yet reaped by PID 1.
        return self.guest.run(f"grep -q '^State:[[:space:]]*[^Z[:space:]]' /proc/{self.pid}/status")[0] == 0

    def output(self) -> str:
        return self.guest.read_file(self.log)

    def kill(self, sig: str = "TERM", wait: float = 10) -> None:
        """Signal the process and wait up to `wait` seconds for it to go."""
        self.guest.run(
            f"kill -s {sig} {self.pid} 2>/dev/null; i=0; "
            f"while kill -0 {self.pid} 2>/dev/null && [ $i -lt {int(wait * 10)} ]; "
            f"do sleep 0.1; i=$((i+1)); done",
            timeout=wait + 10,
        )


def _set_pdeathsig() -> None:
    # qemu dies with the test process, even if that is SIGKILLed.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Guest:
    """A booted qemu guest; use as a context manager."""

    def __init__(
        self,
        build_dir: str | Path | None = None,
        files: dict[str, str | Path] | None = None,
        kernel: Kernel | None = None,
        memory_mib: int = 1024,
        append: str = "",
        qemu_args: list[str] | None = None,
        boot_timeout: float = 90,
        max_runtime: float = 1800,
        name: str = "guest",
    ):
        self.build_dir = Path(build_dir) if build_dir else None
        self.kernel = kernel
        self.memory_mib = memory_mib
        self.append = append
        self.qemu_args = list(qemu_args or [])
        self.boot_timeout = boot_timeout
        self.max_runtime = max_runtime
        self.name = name
        # (kind, guest_path, payload) applied when the initramfs is built
        self._extra: list[tuple[str, str, object]] = []
        for guest_path, host_path in (files or {}).items():
            self.add_file(guest_path, host_path)
        self._tmp: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._agent: socket.socket | None = None
        self._buf = b""
        self._next_id = 1
        self._broken: str | None = None
        self._qmp: socket.socket | None = None
        self._qmp_buf = b""
        self._qmp_id = 0
        self.qmp_events: list[dict] = []
        self._killer: threading.Timer | None = None
        self._expired = False
        self._spawn_n = 0
        self.console_log: Path | None = None
        self._console_text = ""
        self.boot_seconds: float | None = None  # qemu start to agent ready
        self.initramfs_seconds: float | None = None
        self.lkmd: GuestProcess | None = None

    # ---- what goes into the initramfs (call before entering) ----

    def add_file(self, guest_path: str, host_path: str | Path, mode: int | None = None) -> None:
        self._extra.append(("file", guest_path, (Path(host_path), mode)))

    def add_text(self, guest_path: str, content: str, mode: int = 0o644) -> None:
        self._extra.append(("text", guest_path, (content, mode)))

    def add_binary(self, guest_path: str, host_path: str | Path) -> None:
        """A host program with its shared libraries."""
        self._extra.append(("binary", guest_path, Path(host_path)))

    def add_vfat_image(self, guest_path: str, size_mib: int = 4,
                       files: dict[str, bytes] | None = None) -> None:
        """A FAT image built on the host at boot, e.g. /images/vfat0.img."""
        self._extra.append(("vfat", guest_path, (size_mib, files)))

    def add_ntfs_image(self, guest_path: str, size_mib: int = 8) -> None:
        """An empty NTFS image (mkntfs from ntfs-3g) built on the host at boot."""
        self._extra.append(("ntfs", guest_path, size_mib))

    def add_c_program(self, guest_path: str, source: str | Path,
                      cflags: list[str] | None = None) -> None:
        """A C program (a .c file, or its text) compiled on the host at boot
        with `cc -static -O2`, so it needs nothing from the guest."""
        self._extra.append(("cprog", guest_path, (source, cflags)))

    def add_lkmd(self, helper: bool = True) -> None:
        """lkmd, lkmctl and lkmd-modprobe (the kernel.modprobe helper) from
        the meson build dir, at their install paths, with their libraries."""
        self.add_binary("/usr/sbin/lkmd", find_build_binary(self.build_dir, "lkmd"))
        self.add_binary("/usr/bin/lkmctl", find_build_binary(self.build_dir, "lkmctl"))
        if helper:
            self.add_binary(LKMD_MODPROBE, find_build_binary(self.build_dir, "lkmd-modprobe"))

    def add_util_linux_mount(self) -> None:
        """util-linux's mount, umount and losetup from the host, at /usr/bin
        (ahead of busybox's in PATH): their messages are the ones users see,
        e.g. "unknown filesystem type 'cramfs'"."""
        for tool in ("mount", "umount", "losetup"):
            self.add_binary(f"/usr/bin/{tool}", _which(tool))

    def add_iproute2(self) -> None:
        """iproute2's ip from the host at /usr/sbin/ip (ahead of busybox's in
        PATH): busybox ip lacks `ip link add NAME type dummy`."""
        self.add_binary("/usr/sbin/ip", _which("ip"))

    # ---- lifecycle ----

    def __enter__(self) -> "Guest":
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _start(self) -> None:
        if not shutil.which(QEMU):
            raise QemuUnavailable(f"{QEMU} not found (install qemu-system-x86)")
        self.kernel = self.kernel or get_kernel()
        _remove_stale_tmpdirs()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"lkmd-vm-{os.getpid()}-"))
        initrd = self._tmp / "initramfs.cpio"
        t0 = time.monotonic()
        self._build_initramfs(initrd)
        self.initramfs_seconds = time.monotonic() - t0

        self.console_log = self._tmp / "console.log"
        agent_sock = self._tmp / "agent.sock"
        self._qmp_path = self._tmp / "qmp.sock"
        # We listen and qemu connects at startup: nothing the guest writes
        # before we are ready can be lost.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(agent_sock))
        listener.listen(1)
        cmdline = f"console=ttyS0 panic=-1 quiet {self.append}".strip()
        argv = [
            QEMU, "-accel", "tcg", "-machine", "pc", "-m", str(self.memory_mib), "-smp", "1",
            "-nographic", "-no-reboot", "-nic", "none", "-monitor", "none",
            "-serial", f"file:{self.console_log}",
            "-chardev", f"socket,id=agent,path={agent_sock}",
            "-serial", "chardev:agent",
            "-qmp", f"unix:{self._qmp_path},server,nowait",
            "-virtfs",
            f"local,path={self.kernel.modules_dir},mount_tag=mods,security_model=none,readonly=on",
            "-kernel", str(self.kernel.vmlinux), "-initrd", str(initrd),
            "-append", cmdline,
            *self.qemu_args,
        ]
        t0 = time.monotonic()
        self._qemu_stderr = open(self._tmp / "qemu.stderr", "w+b")
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._qemu_stderr,
            stderr=self._qemu_stderr, preexec_fn=_set_pdeathsig,
        )
        self._killer = threading.Timer(self.max_runtime, self._expire)
        self._killer.daemon = True
        self._killer.start()
        listener.settimeout(0.2)
        try:
            while True:
                try:
                    self._agent, _ = listener.accept()
                    break
                except socket.timeout:
                    if self._proc.poll() is not None:
                        raise BootError(f"qemu exited ({self._proc.returncode}) at startup: "
                                        f"{self._qemu_errors()}") from None
                    if time.monotonic() - t0 > 30:
                        raise BootError("qemu did not connect to the agent socket in 30 s") from None
        finally:
            listener.close()

        deadline = t0 + self.boot_timeout
        while True:
            line = self._readline(deadline, "boot")
            if line.startswith("@@LKMD-READY"):
                break
            if line.startswith("@@LKMD-FAIL"):
                raise BootError(f"guest /init failed: {line[12:]}\n{self.console_tail()}")
        self.boot_seconds = time.monotonic() - t0

    def _build_initramfs(self, out: Path) -> None:
        ir = Initramfs(self._tmp / "initramfs")
        for d in ("/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/mnt", "/lib/modules",
                  "/etc", "/var", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            ir.mkdir(d)
        ir.symlink("/var/run", "../run")
        ir.text("/init", _subst(INIT), mode=0o755)
        ir.text(f"{VM_LIB}/agent", _subst(AGENT), mode=0o755)

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
        ir.text(DBUS_CONFIG, DBUS_SYSTEM_CONF)
        ir.mkdir("/usr/share/dbus-1/system.d")
        ir.mkdir("/etc/dbus-1")
        ir.mkdir("/etc/dbus-1/system.d")
        ir.text("/etc/machine-id", uuid.uuid4().hex + "\n", mode=0o444)
        ir.text("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        ir.text("/etc/group", "root:x:0:\nnogroup:x:65534:\n")
        ir.text("/etc/hostname", "lkmd-vm\n")

        # Modules needed to mount the module tree.
        mods = module_closure(self.kernel, BOOT_MODULES)
        for rel in mods:
            ir.file(f"{VM_LIB}/modules/{Path(rel).name}", self.kernel.kmod_dir / rel, mode=0o644)
        ir.text(f"{VM_LIB}/modules.order", "".join(Path(m).name + "\n" for m in mods))

        for kind, guest_path, payload in self._extra:
            if kind == "file":
                ir.file(guest_path, payload[0], mode=payload[1])
            elif kind == "text":
                ir.text(guest_path, payload[0], mode=payload[1])
            elif kind == "binary":
                ir.binary(guest_path, payload)
            elif kind == "vfat":
                img = self._tmp / f"vfat-{len(list(self._tmp.glob('vfat-*')))}.img"
                make_vfat_image(img, size_mib=payload[0], files=payload[1])
                ir.file(guest_path, img, mode=0o644)
            elif kind == "ntfs":
                img = self._tmp / f"ntfs-{len(list(self._tmp.glob('ntfs-*')))}.img"
                make_ntfs_image(img, size_mib=payload)
                ir.file(guest_path, img, mode=0o644)
            elif kind == "cprog":
                exe = self._tmp / f"cprog-{len(list(self._tmp.glob('cprog-*')))}"
                source, cflags = payload
                compile_static(source, exe, cflags)
                ir.file(guest_path, exe, mode=0o755)
        ir.pack(out)
        shutil.rmtree(ir.stage)

    def _expire(self) -> None:
        # The outer timeout, should a test hang between guest calls.
        self._expired = True
        self._proc.kill()

    def _stop(self) -> None:
        if self._killer:
            self._killer.cancel()
        for s in (self._agent, self._qmp):
            if s:
                s.close()
        self._agent = self._qmp = None
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if getattr(self, "_qemu_stderr", None):
            self._qemu_stderr.close()
        if self._tmp:
            # Keep the console for diagnostics after the temp dir is gone.
            try:
                self._console_text = self.console_log.read_text(errors="replace")
            except (OSError, AttributeError):
                pass
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._broken = self._broken or "the guest has been stopped"

    def console_text(self) -> str:
        """The whole kernel console (ttyS0) so far, also after the guest stopped."""
        text = self._console_text
        if self._tmp and self.console_log:
            try:
                text = self.console_log.read_text(errors="replace")
            except OSError:
                pass
        # SeaBIOS clears the screen with escape sequences: drop them.
        return re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|c)|\r", "", text)

    # ---- diagnostics ----

    def _qemu_errors(self) -> str:
        """What qemu itself printed (bad options, missing files ...)."""
        try:
            return (self._tmp / "qemu.stderr").read_text(errors="replace").strip()
        except (OSError, TypeError):
            return ""

    def console_tail(self, lines: int = 30) -> str:
        """The last lines of the kernel console (ttyS0)."""
        tail = self.console_text().splitlines()[-lines:]
        return "\n".join(tail) if tail else "(console log empty)"

    # ---- the agent ----

    def _readline(self, deadline: float, what: str) -> str:
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._broken = f"the guest stopped answering during {what}"
                raise GuestError(f"timed out waiting for the guest ({what})\n"
                                 f"--- console ---\n{self.console_tail()}")
            self._agent.settimeout(min(remaining, 1.0))
            try:
                chunk = self._agent.recv(65536)
            except socket.timeout:
                if self._proc.poll() is None:
                    continue
                chunk = b""
            except OSError:  # e.g. reset by a dying qemu: same as EOF
                chunk = b""
            if not chunk:
                self._proc.wait(timeout=10)
                self._broken = f"qemu exited with status {self._proc.returncode}" + (
                    f" (killed after max_runtime={self.max_runtime:g} s)" if self._expired else "")
                errors = self._qemu_errors()
                raise GuestError(f"{self._broken} during {what}"
                                 + (f" ({errors})" if errors else "") + "\n"
                                 f"--- console ---\n{self.console_tail()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")

    def run(self, cmd: str, timeout: float = 60) -> tuple[int, str]:
        """Run `cmd` with /bin/sh in the guest; return (exit status, stdout+stderr)."""
        if self._broken:
            raise GuestError(f"cannot run {cmd!r}: {self._broken}")
        cid = self._next_id
        self._next_id += 1
        script = base64.b64encode(cmd.encode()).decode()
        guest_timeout = max(1, int(timeout + 0.999))
        try:
            self._agent.sendall(f"{cid} {guest_timeout} {script}\n".encode())
        except OSError as e:
            self._broken = f"the agent connection failed: {e}"
            raise GuestError(f"cannot run {cmd!r}: {self._broken}\n"
                             f"--- console ---\n{self.console_tail()}") from None
        # The guest kills the command itself; the extra time covers reporting.
        deadline = time.monotonic() + guest_timeout + 20
        what = f"command {cmd!r}"
        while self._readline(deadline, what) != f"@@LKMD-BEGIN {cid}":
            pass  # e.g. the tail of an earlier, abandoned command
        chunks = []
        while True:
            line = self._readline(deadline, what)
            if line.startswith("@@LKMD-END "):
                _, rid, rc, timed_out = line.split()
                if rid != str(cid):
                    self._broken = f"agent protocol error: {line!r} for command {cid}"
                    raise GuestError(self._broken)
                break
            chunks.append(line)
        output = base64.b64decode("".join(chunks)).decode(errors="replace")
        if timed_out == "1":
            raise CommandTimeout(cmd, timeout, output)
        return int(rc), output

    def check(self, cmd: str, timeout: float = 60) -> str:
        """Run `cmd`; return its output, raise CommandFailed if it exits non-zero."""
        rc, output = self.run(cmd, timeout)
        if rc != 0:
            raise CommandFailed(cmd, rc, output)
        return output

    def spawn(self, cmd: str, log: str | None = None) -> GuestProcess:
        """Start `cmd` in the background, in its own session, output to `log`."""
        self._spawn_n += 1
        log = log or f"/run/spawn-{self._spawn_n}.log"
        out = self.check(
            f"/bin/busybox setsid /bin/sh -c {shlex.quote(cmd)} "
            f"< /dev/null >> {shlex.quote(log)} 2>&1 & echo $!"
        )
        return GuestProcess(self, int(out.strip()), log)

    def read_file(self, path: str) -> str:
        return self.check(f"cat {shlex.quote(path)}")

    def exists(self, path: str) -> bool:
        return self.run(f"test -e {shlex.quote(path)}")[0] == 0

    # ---- D-Bus and lkmd ----

    def _wait_until(self, condition: str, seconds: float, what: str,
                    alive_pid: int | None = None) -> None:
        """Poll a shell condition inside the guest (one round trip)."""
        alive = f"kill -0 {alive_pid} 2>/dev/null || exit 3; " if alive_pid else ""
        rc, out = self.run(
            f"i=0; while [ $i -lt {int(seconds * 10)} ]; do "
            f"if {condition}; then exit 0; fi; {alive}sleep 0.1; i=$((i+1)); done; exit 2",
            timeout=seconds + 10,
        )
        if rc == 3:
            raise GuestError(f"{what}: the process exited")
        if rc != 0:
            raise GuestError(f"{what}: not ready after {seconds:g} s {out}")

    def start_dbus(self) -> None:
        """Start the system bus (once)."""
        if self.run(f"test -S {DBUS_SOCKET}")[0] == 0:
            return
        self.check("mkdir -p /run/dbus")
        p = self.spawn(f"exec dbus-daemon --nofork --nopidfile --config-file={DBUS_CONFIG}",
                       log="/run/dbus/dbus-daemon.log")
        try:
            self._wait_until(
                "dbus-send --system --print-reply --dest=org.freedesktop.DBus "
                "/org/freedesktop/DBus org.freedesktop.DBus.GetId >/dev/null 2>&1",
                10, "dbus-daemon", alive_pid=p.pid)
        except GuestError as e:
            raise GuestError(f"{e}\n--- dbus-daemon log ---\n{self.read_file(p.log)}") from None

    def start_lkmd(self, args: list[str] | None = None, wait: float = 30) -> GuestProcess:
        """Start dbus-daemon and lkmd; return once lkmd owns its bus name."""
        if not self.exists("/usr/sbin/lkmd"):
            raise GuestError("/usr/sbin/lkmd is not in the guest (call add_lkmd() before booting)")
        self.start_dbus()
        argv = " ".join(shlex.quote(a) for a in ["/usr/sbin/lkmd", *(args or [])])
        self.lkmd = self.spawn(f"exec {argv}", log=LKMD_LOG)
        try:
            self._wait_until(
                "dbus-send --system --print-reply --dest=org.freedesktop.DBus "
                "/org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner "
                f"string:{BUS_NAME} 2>/dev/null | grep -q 'boolean true'",
                wait, f"lkmd owning {BUS_NAME}", alive_pid=self.lkmd.pid)
        except GuestError as e:
            raise GuestError(f"{e}\n--- {LKMD_LOG} ---\n{self.lkmd_log()}") from None
        return self.lkmd

    def stop_lkmd(self, wait: float = 10) -> None:
        if self.lkmd:
            self.lkmd.kill("TERM", wait)
            self.lkmd = None

    def lkmd_log(self, since: int = 0) -> str:
        """lkmd's log (appended to across restarts), from byte offset `since`
        (a value of lkmd_log_size() taken earlier)."""
        rc, out = self.run(f"tail -c +{since + 1} {LKMD_LOG}")
        return out if rc == 0 else "(no lkmd log)"

    def lkmd_log_size(self) -> int:
        """The log's current size: a marker for lkmd_log(since=...)."""
        rc, out = self.run(f"wc -c < {LKMD_LOG}")
        return int(out.strip()) if rc == 0 and out.strip().isdigit() else 0

    # ---- the kernel's module requests ----

    def set_modprobe(self, path: str) -> None:
        """Point /proc/sys/kernel/modprobe at `path` (e.g. LKMD_MODPROBE or
        KMOD_MODPROBE); "" turns autoloading off."""
        self.check(f"printf '%s\\n' {shlex.quote(path)} > /proc/sys/kernel/modprobe "
                   f"&& test \"$(cat /proc/sys/kernel/modprobe)\" = {shlex.quote(path)}")

    def modprobe_path(self) -> str:
        return self.read_file("/proc/sys/kernel/modprobe").strip()

    def modules(self) -> set[str]:
        """Names of the modules in /proc/modules (any state)."""
        return {line.split()[0] for line in self.read_file("/proc/modules").splitlines() if line}

    # ---- QMP ----

    def _qmp_recv(self, deadline: float) -> dict:
        while b"\n" not in self._qmp_buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPError("timed out waiting for QMP")
            self._qmp.settimeout(remaining)
            try:
                chunk = self._qmp.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise QMPError("QMP connection closed (qemu exited?)")
            self._qmp_buf += chunk
        line, _, self._qmp_buf = self._qmp_buf.partition(b"\n")
        return json.loads(line)

    def _qmp_connect(self) -> None:
        deadline = time.monotonic() + 10
        self._qmp = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._qmp.connect(str(self._qmp_path))
        greeting = self._qmp_recv(deadline)
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self._qmp_call("qmp_capabilities", {}, deadline)

    def _qmp_call(self, command: str, args: dict, deadline: float):
        self._qmp_id += 1
        msg = {"execute": command, "id": self._qmp_id}
        if args:
            msg["arguments"] = args
        self._qmp.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._qmp_recv(deadline)
            if "event" in reply:
                self.qmp_events.append(reply)
            elif reply.get("id") == self._qmp_id:
                if "error" in reply:
                    raise QMPError(f"{command} {args}: {reply['error'].get('desc', reply['error'])}")
                return reply.get("return")

    def qmp(self, command: str, **args):
        """Run a QMP command, e.g. qmp("device_add", driver="e1000", id="nic1").
        Arguments whose names have dashes go in as qmp("x", **{"a-b": 1})."""
        if self._qmp is None:
            self._qmp_connect()
        return self._qmp_call(command, args, time.monotonic() + 30)

    def wait_qmp_event(self, name: str, timeout: float = 30, **data) -> dict:
        """Wait for an event such as DEVICE_DELETED whose data includes `data`."""
        if self._qmp is None:
            self._qmp_connect()
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.qmp_events):
                if ev["event"] == name and all(ev.get("data", {}).get(k) == v for k, v in data.items()):
                    return self.qmp_events.pop(i)
            try:
                ev = self._qmp_recv(deadline)
            except QMPError:
                raise QMPError(f"no {name} event {data} within {timeout:g} s") from None
            if "event" in ev:
                self.qmp_events.append(ev)


def _remove_stale_tmpdirs() -> None:
    """Remove temp dirs of test processes that were SIGKILLed (their qemu
    died with them through PDEATHSIG, but nothing removed their files)."""
    for d in Path(tempfile.gettempdir()).glob("lkmd-vm-*-*"):
        pid = d.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def _which(tool: str) -> str:
    path = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.path.exists(p)), None)
    if not path:
        raise GuestError(f"{tool} is not installed on the host")
    return path


def find_build_binary(build_dir: Path | None, name: str) -> Path:
    """Locate an executable built by meson: its usual place, else a search."""
    if not build_dir:
        raise GuestError(f"no --build-dir given: cannot find {name}")
    build_dir = Path(build_dir)
    for sub in ("daemon", "client", "."):
        p = build_dir / sub / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    for p in build_dir.rglob(name):
        if p.is_file() and os.access(p, os.X_OK) and ".p" not in p.parent.name:
            return p
    raise GuestError(f"{name} not found in {build_dir} (run meson compile first)")
