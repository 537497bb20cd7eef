# SPDX-License-Identifier: LGPL-2.1-or-later
"""SystemdGuest: a Guest that boots a cached Debian root fs (rootfs.py) with systemd as PID 1,
on its release's own kernel."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

from guest import (
    VM_LIB, Guest, GuestError, Initramfs, _which, compile_static, guest_file, make_vfat_image,
    module_closure,
)
from kernel import REPO_ROOT, get_kernel
from rootfs import BOOT_MODULES, DEB_GUEST_PATH, RELEASE_KERNELS, Rootfs

BUSYBOX_APPLETS = ["sh", "mount", "mkdir", "sleep", "cp", "switch_root", "poweroff", "uname",
                   "cat", "echo", "ls"]


class SystemdGuest(Guest):
    """A guest booting `rootfs` with systemd as PID 1. add_file, add_text and add_vfat_image
    put files into the root fs (copied in at boot, on top of the overlay)."""

    def __init__(self, rootfs: Rootfs, deb: Path | None = None, boot_timeout: float = 180,
                 append: str = "", keep_overlay: Path | None = None, **kwargs):
        # systemd's status lines on the console help when a boot goes wrong.
        super().__init__(boot_timeout=boot_timeout,
                         append=f"systemd.show_status=1 {append}".strip(), **kwargs)
        self.rootfs = rootfs
        # Where the guest's writes go, kept after it stops (a prepared image for later guests:
        # a Rootfs whose image is a .qcow2); by default a throw-away file.
        self.keep_overlay = keep_overlay
        self.running_seconds: float | None = None
        self.kernel_flavour = RELEASE_KERNELS[rootfs.release]
        if deb:
            self.add_file(DEB_GUEST_PATH, deb, mode=0o644)
        # Until dpkg installs the package's copy (see the module doc).
        self.add_file("/usr/share/lkmd/udev/80-drivers.rules",
                      REPO_ROOT / "units" / "80-drivers.rules", mode=0o644)

    def _start(self) -> None:
        # Here, not in __init__: a kernel that cannot be had skips the suite (Suite.boot).
        if self.kernel is None and self.kernel_flavour:
            self.kernel = get_kernel(self.kernel_flavour)
        super()._start()

    def _build_initramfs(self, out: Path) -> None:
        overlay = self.keep_overlay or self._tmp / "root.qcow2"
        backing_format = "qcow2" if self.rootfs.image.suffix == ".qcow2" else "raw"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", backing_format, "-b",
                        str(self.rootfs.image.resolve()), str(overlay)], check=True, timeout=60,
                       capture_output=True)
        self.qemu_args += ["-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe"]

        ir = Initramfs(self._tmp / "initramfs")
        for d in ("/proc", "/sys", "/dev", "/newroot", "/usr/sbin", "/usr/bin", "/bin", "/sbin"):
            ir.mkdir(d)
        ir.text("/init", guest_file("init-systemd"), mode=0o755)
        ir.file("/bin/busybox", _which("busybox"), mode=0o755)
        for applet in BUSYBOX_APPLETS:
            ir.symlink(f"/bin/{applet}", "busybox")
        ir.binary("/usr/bin/kmod", _which("kmod"))
        ir.symlink("/usr/sbin/insmod", "../bin/kmod")
        mods = module_closure(self.kernel, BOOT_MODULES)
        for rel in mods:
            ir.file(f"{VM_LIB}/modules/{Path(rel).name}", self.kernel.kmod_dir / rel, mode=0o644)
        ir.text(f"{VM_LIB}/modules.order", "".join(Path(m).name + "\n" for m in mods))

        payload = Initramfs(ir.stage / "payload")
        for kind, guest_path, data in self._extra:
            if kind == "file":
                payload.file(guest_path, data[0], mode=data[1])
            elif kind == "text":
                payload.text(guest_path, data[0], mode=data[1])
            elif kind == "cprog":
                binary = self._tmp / f"cprog-{Path(guest_path).name}"
                compile_static(data[0], binary, data[1])
                payload.file(guest_path, binary, mode=0o755)
            elif kind == "vfat":
                img = self._tmp / f"vfat-{len(list(self._tmp.glob('vfat-*')))}.img"
                make_vfat_image(img, size_mib=data[0], files=data[1])
                payload.file(guest_path, img, mode=0o644)
            else:
                raise GuestError(f"SystemdGuest cannot add a {kind!r} ({guest_path}): "
                                 "install it in the root fs instead")
        ir.pack(out)
        shutil.rmtree(ir.stage)

    def wait_running(self, timeout: float = 240) -> str:
        """Wait until systemd has finished starting up; return its state (running, or
        degraded with the failed units appended)."""
        t0 = time.monotonic()
        rc, out = self.run("systemctl is-system-running --wait", timeout=timeout)
        self.running_seconds = time.monotonic() - t0
        state = out.strip().splitlines()[-1] if out.strip() else "?"
        if state not in ("running", "degraded"):
            raise GuestError(f"systemd did not finish starting up: {state}\n"
                             + self.run("systemctl list-jobs --no-pager")[1])
        if state == "degraded":
            state += "\n" + self.run("systemctl --failed --no-pager --no-legend")[1]
        return state

    def journal(self, args: str = "", lines: int = 40) -> str:
        rc, out = self.run(f"journalctl --no-pager -o short-monotonic -n {lines} {args}")
        return out

    def unit_properties(self, unit: str, *names: str) -> dict[str, str]:
        out = self.check(f"systemctl show {shlex.quote(unit)} "
                         + " ".join(f"-p {n}" for n in names))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
