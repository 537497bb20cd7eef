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

The pieces, one module each: initramfs.py (the cpio and what goes into it, with the guest's
/init, agent and bus configuration from guest-files/), images.py (disk images, static C
programs), qemu.py (the process and its console), agent.py (the command protocol), qmp.py.
Guest puts them together; the suites import everything from here.

The guest is not thread-safe: drive it from one thread.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from agent import Agent
from guest_errors import (  # noqa: F401 (re-exported: the suites import them from here)
    BootError, CommandFailed, CommandTimeout, GuestError, QemuUnavailable, QMPError,
)
from images import compile_static, make_ntfs_image, make_vfat_image
from initramfs import (  # noqa: F401
    AGENT_PORT, BOOT_MODULES, DBUS_CONFIG, DBUS_SOCKET, GUEST_PATH, HOST_TOOLS, KMOD_TOOLS, VM_LIB,
    Initramfs, _which, agent_initramfs, guest_file, ldd_closure, module_closure,
)
from kernel import Kernel, get_kernel
from qemu import QEMU, QemuProcess, remove_stale_tmpdirs
from qmp import QMP

LKMD_LOG = "/run/lkmd.log"
LKMD_MODPROBE = "/usr/sbin/lkmd-modprobe"  # lkmd's kernel.modprobe helper
KMOD_MODPROBE = "/usr/sbin/modprobe"  # kmod's, what /init sets
BUS_NAME = "org.lkmd1"


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
        self._qemu: QemuProcess | None = None
        self._agent: Agent | None = None
        self._qmp: QMP | None = None
        self._spawn_n = 0
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
        remove_stale_tmpdirs()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"lkmd-vm-{os.getpid()}-"))
        initrd = self._tmp / "initramfs.cpio"
        t0 = time.monotonic()
        self._build_initramfs(initrd)
        self.initramfs_seconds = time.monotonic() - t0

        t0 = time.monotonic()
        self._qemu = QemuProcess(self._tmp, self.max_runtime)
        self._qmp = QMP(self._qemu.qmp_path)
        sock = self._qemu.start(self.kernel, initrd, self.memory_mib, self.append,
                                self.qemu_args)
        self._agent = Agent(sock, self._qemu, self.console_tail)
        self._agent.wait_ready(t0 + self.boot_timeout)
        self.boot_seconds = time.monotonic() - t0

    def _build_initramfs(self, out: Path) -> None:
        ir = agent_initramfs(self._tmp / "initramfs", self.kernel)
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

    def _stop(self) -> None:
        for channel in (self._agent, self._qmp):
            if channel:
                channel.close()
        if self._qemu:
            self._qemu.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self._agent:
            self._agent.broken = self._agent.broken or "the guest has been stopped"

    # ---- diagnostics ----

    @property
    def console_log(self) -> Path | None:
        return self._qemu.console_log if self._qemu else None

    def console_text(self) -> str:
        """The whole kernel console (ttyS0) so far, also after the guest stopped."""
        return self._qemu.console_text() if self._qemu else ""

    def console_tail(self, lines: int = 30) -> str:
        """The last lines of the kernel console (ttyS0)."""
        tail = self.console_text().splitlines()[-lines:]
        return "\n".join(tail) if tail else "(console log empty)"

    # ---- the agent ----

    def run(self, cmd: str, timeout: float = 60) -> tuple[int, str]:
        """Run `cmd` with /bin/sh in the guest; return (exit status, stdout+stderr)."""
        if not self._agent:
            raise GuestError(f"cannot run {cmd!r}: the guest is not running")
        return self._agent.run(cmd, timeout)

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

    @property
    def qmp_events(self) -> list[dict]:
        """QMP events received and not yet waited for."""
        return self._qmp.events if self._qmp else []

    def qmp(self, command: str, **args):
        """Run a QMP command, e.g. qmp("device_add", driver="e1000", id="nic1").
        Arguments whose names have dashes go in as qmp("x", **{"a-b": 1})."""
        return self._qmp.execute(command, args)

    def wait_qmp_event(self, name: str, timeout: float = 30, **data) -> dict:
        """Wait for an event such as DEVICE_DELETED whose data includes `data`."""
        return self._qmp.wait_event(name, timeout, data)


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
