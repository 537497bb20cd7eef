# SPDX-License-Identifier: LGPL-2.1-or-later
"""The qemu process of one guest: its command line, start-up up to the agent's connection, the
kernel console log, and a stop that never leaves qemu behind."""

from __future__ import annotations

import ctypes
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from guest_errors import BootError
from kernel import Kernel

QEMU = "qemu-system-x86_64"


def _set_pdeathsig() -> None:
    # qemu dies with the test process, even if that is SIGKILLed.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def remove_stale_tmpdirs() -> None:
    """Remove temp dirs of test processes that were SIGKILLed (their qemu
    died with them through PDEATHSIG, but nothing removed their files)."""
    for d in Path(tempfile.gettempdir()).glob("lkmd-vm-*-*"):
        pid = d.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


class QemuProcess:
    """qemu with the kernel console on ttyS0 (a file in `tmp`), the agent on ttyS1 (a unix
    socket qemu connects to) and QMP on `qmp_path`; killed after `max_runtime` whatever
    happens."""

    def __init__(self, tmp: Path, max_runtime: float):
        self.tmp = tmp
        self.max_runtime = max_runtime
        self.console_log = tmp / "console.log"
        self.qmp_path = tmp / "qmp.sock"
        self.proc: subprocess.Popen | None = None
        self.expired = False
        self._killer: threading.Timer | None = None
        self._stderr = None
        self._console_text = ""

    def start(self, kernel: Kernel, initrd: Path, memory_mib: int, append: str,
              qemu_args: list[str]) -> socket.socket:
        """Start qemu; return the agent's connection once qemu has made it."""
        agent_sock = self.tmp / "agent.sock"
        # We listen and qemu connects at startup: nothing the guest writes
        # before we are ready can be lost.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(agent_sock))
        listener.listen(1)
        cmdline = f"console=ttyS0 panic=-1 quiet {append}".strip()
        argv = [
            QEMU, "-accel", "tcg", "-machine", "pc", "-m", str(memory_mib), "-smp", "1",
            "-nographic", "-no-reboot", "-nic", "none", "-monitor", "none",
            "-serial", f"file:{self.console_log}",
            "-chardev", f"socket,id=agent,path={agent_sock}",
            "-serial", "chardev:agent",
            "-qmp", f"unix:{self.qmp_path},server,nowait",
            "-virtfs",
            f"local,path={kernel.modules_dir},mount_tag=mods,security_model=none,readonly=on",
            "-kernel", str(kernel.vmlinux), "-initrd", str(initrd),
            "-append", cmdline,
            *qemu_args,
        ]
        t0 = time.monotonic()
        self._stderr = open(self.tmp / "qemu.stderr", "w+b")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
            stderr=self._stderr, preexec_fn=_set_pdeathsig,
        )
        self._killer = threading.Timer(self.max_runtime, self._expire)
        self._killer.daemon = True
        self._killer.start()
        listener.settimeout(0.2)
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                    return conn
                except socket.timeout:
                    if self.proc.poll() is not None:
                        raise BootError(f"qemu exited ({self.proc.returncode}) at startup: "
                                        f"{self.errors()}") from None
                    if time.monotonic() - t0 > 30:
                        raise BootError("qemu did not connect to the agent socket in 30 s") from None
        finally:
            listener.close()

    def _expire(self) -> None:
        # The outer timeout, should a test hang between guest calls.
        self.expired = True
        self.proc.kill()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_status(self) -> str:
        """Wait for qemu to end (it closed its end); say how it ended."""
        self.proc.wait(timeout=10)
        return f"qemu exited with status {self.proc.returncode}" + (
            f" (killed after max_runtime={self.max_runtime:g} s)" if self.expired else "")

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 10 s; the console is kept for console_text()."""
        if self._killer:
            self._killer.cancel()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        try:
            self._console_text = self.console_log.read_text(errors="replace")
        except OSError:
            pass

    def errors(self) -> str:
        """What qemu itself printed (bad options, missing files ...)."""
        try:
            return (self.tmp / "qemu.stderr").read_text(errors="replace").strip()
        except OSError:
            return ""

    def console_text(self) -> str:
        """The whole kernel console (ttyS0) so far, also after qemu stopped."""
        text = self._console_text
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            pass
        # SeaBIOS clears the screen with escape sequences: drop them.
        return re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|c)|\r", "", text)
