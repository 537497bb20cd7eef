# SPDX-License-Identifier: LGPL-2.1-or-later
"""The host side of the guest's command agent (guest-files/agent) on ttyS1.

A request is one line `ID TIMEOUT BASE64(script)`; the reply is
`@@LKMD-BEGIN ID`, the base64 of the output, `@@LKMD-END ID STATUS TIMEDOUT`. At boot the agent
says `@@LKMD-READY uname-r`, or /init says `@@LKMD-FAIL reason`."""

from __future__ import annotations

import base64
import socket
import time
from typing import Callable

from guest_errors import BootError, CommandTimeout, GuestError
from qemu import QemuProcess


class Agent:
    def __init__(self, sock: socket.socket, qemu: QemuProcess,
                 console_tail: Callable[[], str]):
        self.sock = sock
        self.qemu = qemu
        self.console_tail = console_tail
        self.broken: str | None = None  # why no command can run any more
        self._buf = b""
        self._next_id = 1

    def close(self) -> None:
        self.sock.close()

    def _readline(self, deadline: float, what: str) -> str:
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.broken = f"the guest stopped answering during {what}"
                raise GuestError(f"timed out waiting for the guest ({what})\n"
                                 f"--- console ---\n{self.console_tail()}")
            self.sock.settimeout(min(remaining, 1.0))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                if self.qemu.running():
                    continue
                chunk = b""
            except OSError:  # e.g. reset by a dying qemu: same as EOF
                chunk = b""
            if not chunk:
                self.broken = self.qemu.exit_status()
                errors = self.qemu.errors()
                raise GuestError(f"{self.broken} during {what}"
                                 + (f" ({errors})" if errors else "") + "\n"
                                 f"--- console ---\n{self.console_tail()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")

    def wait_ready(self, deadline: float) -> None:
        """Until the agent announces itself; /init's failure is a BootError."""
        while True:
            line = self._readline(deadline, "boot")
            if line.startswith("@@LKMD-READY"):
                return
            if line.startswith("@@LKMD-FAIL"):
                raise BootError(f"guest /init failed: {line[12:]}\n{self.console_tail()}")

    def run(self, cmd: str, timeout: float) -> tuple[int, str]:
        """Run `cmd` with /bin/sh in the guest; return (exit status, stdout+stderr)."""
        if self.broken:
            raise GuestError(f"cannot run {cmd!r}: {self.broken}")
        cid = self._next_id
        self._next_id += 1
        script = base64.b64encode(cmd.encode()).decode()
        guest_timeout = max(1, int(timeout + 0.999))
        try:
            self.sock.sendall(f"{cid} {guest_timeout} {script}\n".encode())
        except OSError as e:
            self.broken = f"the agent connection failed: {e}"
            raise GuestError(f"cannot run {cmd!r}: {self.broken}\n"
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
                    self.broken = f"agent protocol error: {line!r} for command {cid}"
                    raise GuestError(self.broken)
                break
            chunks.append(line)
        output = base64.b64decode("".join(chunks)).decode(errors="replace")
        if timed_out == "1":
            raise CommandTimeout(cmd, timeout, output)
        return int(rc), output
