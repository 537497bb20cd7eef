# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the guest harness raises (guest.py re-exports all of them)."""

from __future__ import annotations


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
