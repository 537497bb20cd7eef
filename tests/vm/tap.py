# SPDX-License-Identifier: LGPL-2.1-or-later
"""A tiny TAP producer for the VM suites (meson: protocol: 'tap').

    with Suite("smoke") as s:
        g = s.boot(Guest(build_dir=s.build_dir))

        @s.scenario("modprobe dummy puts dummy in /proc/modules")
        def _():
            g.check("/usr/sbin/modprobe dummy")

Each scenario runs at once and becomes one test point; a failing one prints
its diagnostics as TAP comments (the message, which for guest.check()
includes the command output, then the tails of the lkmd log and of the
kernel console) and the suite goes on with the next. When qemu or the
kernel cannot be had the whole file reports `1..0 # SKIP reason`, unless
LKMD_VM_REQUIRE=1 (for CI machines that must run it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from guest import Guest, GuestError, QemuUnavailable
from kernel import KernelUnavailable


class SkipSuite(Exception):
    pass


class BailOut(Exception):
    pass


def comment(text: str) -> None:
    """Print text as TAP comment lines."""
    for line in str(text).rstrip("\n").splitlines() or [""]:
        print(f"# {line}".rstrip(), flush=True)


def _interrupted(signum, frame):
    # meson's timeout sends SIGTERM: unwind so the guest's __exit__ stops qemu.
    raise SystemExit(128 + signum)


class Suite:
    def __init__(self, name: str, argv: list[str] | None = None, description: str | None = None):
        ap = argparse.ArgumentParser(description=description or f"lkmd VM suite {name}")
        ap.add_argument("--build-dir", type=Path, default=None,
                        help="meson build dir (for lkmd, lkmctl and log files)")
        self.args = ap.parse_args(argv)
        self.build_dir: Path | None = self.args.build_dir
        # The same suite on another kernel keeps its console log apart.
        flavour = os.environ.get("LKMD_VM_KERNEL")
        self.name = f"{name}-{flavour}" if flavour else name
        self.count = 0
        self.failed = 0
        self.guest: Guest | None = None
        self._stack = ExitStack()
        self._t0 = time.monotonic()

    def __enter__(self) -> "Suite":
        signal.signal(signal.SIGTERM, _interrupted)
        self._stack.__enter__()
        return self

    def __exit__(self, etype, exc, tb) -> bool:
        try:
            self._stack.__exit__(etype, exc, tb)
        finally:
            self._save_console()
        if etype is SkipSuite:
            if self.count:
                # Points already printed: the rest cannot run, which is a failure.
                print(f"Bail out! {exc}", flush=True)
                sys.exit(1)
            required = os.environ.get("LKMD_VM_REQUIRE") == "1"
            print(f"1..0 # SKIP {exc}", flush=True)
            if required:
                comment("LKMD_VM_REQUIRE=1: a skipped VM suite counts as a failure")
            sys.exit(1 if required else 0)
        if etype is BailOut or (etype is not None and not issubclass(etype, SystemExit)):
            if etype is not BailOut:
                comment("".join(traceback.format_exception(etype, exc, tb)))
            print(f"Bail out! {str(exc).splitlines()[0] if str(exc) else etype.__name__}",
                  flush=True)
            sys.exit(1)
        if etype is SystemExit and isinstance(exc.code, int) and exc.code > 128:
            print(f"Bail out! interrupted by signal {exc.code - 128}", flush=True)
            return False
        if etype is None:
            print(f"1..{self.count}", flush=True)
            comment(f"{self.name}: {self.failed} of {self.count} scenarios failed "
                    f"in {time.monotonic() - self._t0:.1f} s")
            sys.exit(1 if self.failed else 0)
        return False

    def _save_console(self) -> None:
        """Keep the kernel console next to meson's own logs."""
        if self.guest and self.build_dir and self.build_dir.is_dir():
            dest = self.build_dir / "meson-logs" / "vm" / f"{self.name}-console.log"
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(self.guest.console_text())
            except OSError:
                pass

    def boot(self, guest: Guest) -> Guest:
        """Boot `guest` for the rest of the suite; skip if qemu or the kernel is missing."""
        try:
            self._stack.enter_context(guest)
        except (QemuUnavailable, KernelUnavailable) as e:
            raise SkipSuite(str(e).splitlines()[0]) from None
        except GuestError as e:
            self.guest = guest
            comment(str(e))
            raise BailOut(f"the guest did not boot: {str(e).splitlines()[0]}") from None
        self.guest = guest
        k = guest.kernel
        comment(f"kernel {k.package} {k.version}: initramfs built in "
                f"{guest.initramfs_seconds:.2f} s, booted in {guest.boot_seconds:.2f} s")
        return guest

    def scenario(self, name: str, skip: str | None = None) -> Callable[[Callable[[], None]], Callable]:
        """Decorator: run the function now as test point `name`."""
        def run(fn: Callable[[], None]) -> Callable:
            self.count += 1
            n = self.count
            if skip:
                print(f"ok {n} - {name} # SKIP {skip}", flush=True)
                return fn
            t0 = time.monotonic()
            try:
                fn()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as e:  # noqa: BLE001 - every failure is a test result
                self.failed += 1
                print(f"not ok {n} - {name}", flush=True)
                self._diagnose(e)
            else:
                print(f"ok {n} - {name}", flush=True)
            comment(f"took {time.monotonic() - t0:.2f} s")
            return fn
        return run

    def _diagnose(self, e: BaseException) -> None:
        if isinstance(e, AssertionError):
            # Where it failed, then what: the test's own line is enough context.
            frames = [f for f in traceback.extract_tb(e.__traceback__)
                      if not f.filename.endswith(("guest.py", "tap.py"))]
            where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
            comment(f"AssertionError{where}: {e}")
        else:
            comment("".join(traceback.format_exception(type(e), e, e.__traceback__)))
        g = self.guest
        if g is None:
            return
        if g.lkmd is not None:
            try:
                rc, log = g.run("tail -n 40 /run/lkmd.log", timeout=10)
                comment("--- lkmd log (tail) ---")
                comment(log if rc == 0 else "(unreadable)")
            except GuestError as ge:
                comment(f"--- lkmd log unavailable: {str(ge).splitlines()[0]}")
        comment("--- kernel console (tail) ---")
        comment(g.console_tail(20))


def expect(condition: bool, message: str) -> None:
    """assert that survives python -O."""
    if not condition:
        raise AssertionError(message)
