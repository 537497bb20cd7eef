# SPDX-License-Identifier: LGPL-2.1-or-later
"""A private system bus with the real lkmd on a simulated kernel, for bus-level tests.

Each BusEnv is its own world: a temp dir holding the bus socket, a fake procfs and sysfs, and the
daemon's log. Nothing touches the host's kernel or its system bus.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORLD = os.path.join(HERE, 'world.conf')
NOBODY = 65534

# The default policy of Debian's system bus (/usr/share/dbus-1/system.conf): nobody may own a
# name or call a method unless a policy file allows it. The one policy file is lkmd's own, from
# the tree, so the tests go through the policy that is installed.
BUS_POLICY = os.path.join(HERE, '..', '..', 'units', 'org.lkmd1.conf')
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{policy}</include>
  {extra}
</busconfig>
"""

# Where a test runs polkit's stand-in (tests/integration/polkit_stand_in.cpp): polkit's own bus
# policy file, in short. The system bus keeps at most 128 replies pending per connection
# (dbus-daemon's built-in limit, left as is by Debian's system.conf); said here, not assumed.
POLKIT_POLICY = """
  <limit name="max_replies_per_connection">128</limit>
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
"""


def start_dbus_daemon(directory, extra=''):
    """A system bus with the config above, listening in `directory`: (process, socket path)."""
    socket = os.path.join(directory, 'bus.sock')
    config = os.path.join(directory, 'bus.conf')
    with open(config, 'w') as f:
        f.write(BUS_CONFIG.format(socket=socket, policy=os.path.abspath(BUS_POLICY), extra=extra))
    bus = subprocess.Popen(['dbus-daemon', '--nofork', '--config-file=' + config],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not os.path.exists(socket):
        if bus.poll() is not None or time.monotonic() > deadline:
            bus.kill()
            raise RuntimeError('dbus-daemon did not create ' + socket)
        time.sleep(0.05)
    return bus, socket


def build_dir():
    return os.environ.get('LKMD_BUILD_DIR') or os.path.join(HERE, '..', '..', 'build')


class BusEnv:
    def __init__(self, world=WORLD, extra_bus_config=''):
        self.world = world
        self.extra_bus_config = extra_bus_config
        self.dir = tempfile.mkdtemp(prefix='lkmd-bus-')
        os.chmod(self.dir, 0o755)  # the unprivileged caller must reach the socket
        self.socket = os.path.join(self.dir, 'bus.sock')
        self.address = 'unix:path=' + self.socket
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address, LC_ALL='C.UTF-8',
                        SYSTEMD_COLORS='0', SYSTEMD_PAGER='')
        self.env.pop('JOURNAL_STREAM', None)
        self.bus = None
        self.daemon = None
        self.monitor = None
        self.services = []  # started by tests on this bus, stopped with it
        self._files = []

    def _open(self, path, mode):
        f = open(path, mode)
        self._files.append(f)
        return f

    # lkmd's own code on the simulated kernel (tests/sim), and the helper and lkmctl as built.
    # LKMD_SIM, LKMD_HELPER and LKMCTL point elsewhere (the autopkgtest: the installed ones).
    def lkmd_path(self):
        return os.environ.get('LKMD_SIM') or os.path.join(build_dir(), 'tests', 'sim', 'lkmd-sim')

    def helper_path(self):
        return os.environ.get('LKMD_HELPER') or os.path.join(build_dir(), 'client', 'lkmd-modprobe')

    def lkmctl_path(self):
        return os.environ.get('LKMCTL') or os.path.join(build_dir(), 'client', 'lkmctl')

    def start(self, before_daemon=None):
        self.bus, _ = start_dbus_daemon(self.dir, self.extra_bus_config)
        self.monitor_log = os.path.join(self.dir, 'signals.log')
        self.monitor = subprocess.Popen(
            ['dbus-monitor', '--system', "type='signal',interface='org.lkmd1.Manager'"],
            stdout=self._open(self.monitor_log, 'w'), stderr=subprocess.DEVNULL, env=self.env)
        if before_daemon is not None:
            before_daemon(self)
        self.start_daemon()
        return self

    def start_daemon(self, extra_args=()):
        for sub in ('proc', 'sys', 'run', 'etc'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.runtime_dir = os.path.join(self.dir, 'run')
        self.config_dir = os.path.join(self.dir, 'etc')
        self.request_socket = os.path.join(self.runtime_dir, 'kernel-request.sock')
        self.log_path = os.path.join(self.dir, 'lkmd.log')
        # Never the host's /var/lib/lkmd: the load history of a test stays in its world.
        self.state_dir = os.path.join(self.dir, 'state')
        self.daemon = subprocess.Popen(
            [self.lkmd_path(), '--fake-kernel=' + self.world,
             '--procfs=' + os.path.join(self.dir, 'proc'),
             '--sysfs=' + os.path.join(self.dir, 'sys'), '--runtime-dir=' + self.runtime_dir,
             '--config-dir=' + self.config_dir,
             '--vendor-config-dir=' + os.path.join(self.dir, 'lib'),
             '--modprobe-d-dir=' + os.path.join(self.dir, 'modprobe.d'), '--log-level=debug',
             '--state-dir=' + self.state_dir,
             *extra_args],
            stdout=subprocess.DEVNULL, stderr=self._open(self.log_path, 'a'), env=self.env)
        self._wait_for(self.name_has_owner, 'lkmd to own org.lkmd1')

    def name_has_owner(self, name='org.lkmd1'):
        out = subprocess.run(['busctl', '--system', 'status', name], env=self.env,
                             capture_output=True, text=True)
        return out.returncode == 0

    def start_service(self, argv, name):
        """A process on this bus (as root) that owns `name`; stopped with the bus."""
        proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=self._open(os.path.join(self.dir, name + '.log'), 'a'))
        self.services.append(proc)
        self._wait_for(lambda: proc.poll() is None and self.name_has_owner(name), name)
        return proc

    def _wait_for(self, predicate, what, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError('lkmd exited while waiting for %s:\n%s' % (what, self.log()))
            if predicate():
                return
            time.sleep(0.05)
        raise RuntimeError('timed out waiting for ' + what)

    def stop(self):
        for proc in (self.daemon, *self.services, self.monitor, self.bus):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for f in self._files:
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ''

    def signals(self):
        with open(self.monitor_log) as f:
            return f.read()

    def proc_modules(self):
        with open(os.path.join(self.dir, 'proc', 'modules')) as f:
            return [line.split()[0] for line in f if line.strip()]

    @staticmethod
    def as_user(uid=NOBODY):
        def drop():
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        return drop

    @staticmethod
    def as_nobody():
        return BusEnv.as_user(NOBODY)

    def run(self, argv, unprivileged=False, timeout=60, uid=None, **kwargs):
        if unprivileged and uid is None:
            uid = NOBODY
        return subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout,
                              preexec_fn=self.as_user(uid) if uid is not None else None, **kwargs)

    def call(self, method, *args, unprivileged=False, timeout=60, uid=None):
        """dbus-send, because it prints the D-Bus error name that busctl hides."""
        argv = ['dbus-send', '--system', '--print-reply', '--reply-timeout=%d' % (timeout * 1000),
                '--dest=org.lkmd1', '/org/lkmd1', 'org.lkmd1.Manager.' + method, *args]
        return self.run(argv, unprivileged=unprivileged, timeout=timeout + 5, uid=uid)

    def busctl_json(self, method, signature='', *args, unprivileged=False):
        import json
        argv = ['busctl', '--system', '--json=short', 'call', 'org.lkmd1', '/org/lkmd1',
                'org.lkmd1.Manager', method]
        if signature:
            argv += [signature, *args]
        out = self.run(argv, unprivileged=unprivileged)
        if out.returncode != 0:
            raise AssertionError('%s failed: %s' % (method, out.stderr))
        return json.loads(out.stdout)['data'] if out.stdout.strip() else None

    def list_modules(self, unprivileged=False):
        """ListModules as a dict name -> {key: value}."""
        rows = self.busctl_json('ListModules', unprivileged=unprivileged)[0]
        return {row['Name']['data']: {k: v['data'] for k, v in row.items()} for row in rows}
