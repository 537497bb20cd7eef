# SPDX-License-Identifier: LGPL-2.1-or-later
"""A QMP client for qemu's monitor socket: commands (device_add, device_del ...) and the
events that arrive meanwhile, kept until someone waits for them."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from guest_errors import QMPError


class QMP:
    def __init__(self, path: Path):
        self.path = path
        self.events: list[dict] = []
        self._sock: socket.socket | None = None
        self._buf = b""
        self._id = 0

    def close(self) -> None:
        if self._sock:
            self._sock.close()
            self._sock = None

    def _recv(self, deadline: float) -> dict:
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPError("timed out waiting for QMP")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise QMPError("QMP connection closed (qemu exited?)")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def _connect(self) -> None:
        deadline = time.monotonic() + 10
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(self.path))
        greeting = self._recv(deadline)
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self._call("qmp_capabilities", {}, deadline)

    def _call(self, command: str, args: dict, deadline: float):
        self._id += 1
        msg = {"execute": command, "id": self._id}
        if args:
            msg["arguments"] = args
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._recv(deadline)
            if "event" in reply:
                self.events.append(reply)
            elif reply.get("id") == self._id:
                if "error" in reply:
                    raise QMPError(f"{command} {args}: {reply['error'].get('desc', reply['error'])}")
                return reply.get("return")

    def execute(self, command: str, args: dict):
        if self._sock is None:
            self._connect()
        return self._call(command, args, time.monotonic() + 30)

    def wait_event(self, name: str, timeout: float, data: dict) -> dict:
        if self._sock is None:
            self._connect()
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and all(ev.get("data", {}).get(k) == v for k, v in data.items()):
                    return self.events.pop(i)
            try:
                ev = self._recv(deadline)
            except QMPError:
                raise QMPError(f"no {name} event {data} within {timeout:g} s") from None
            if "event" in ev:
                self.events.append(ev)
