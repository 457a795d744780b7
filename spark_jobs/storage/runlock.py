"""One writer at a time per summary table set, through any Iceberg catalog.

The lock lives in the properties of the ``<summary>_control`` Iceberg table.
Taking it is a compare-and-swap commit (``iceberg.swap_properties``): a run
sets its token only on top of the very metadata version in which it saw the
lock free, so of two runs racing for it exactly one wins; the other looks again
and waits, or fails with a message naming the holder.

A holder that died leaves its token behind. It counts as free when its
processes are gone or its lease ran out; a live holder renews the lease from a
background thread and stops its own run before any further commit if it ever
finds the lock taken from it.

"Its processes are gone" is only asked on the same machine, which means more
than the same host name: containers share host names and reuse process ids,
so the holder's boot id and PID namespace must be ours too, or we wait for
the lease. The lease is a wall-clock time written by the holder and read by
others: their clocks must agree to well within the lease (10 minutes; NTP
keeps servers within a second). A clock far ahead would take a live holder's
lock early; its next lease renewal then finds the token gone and stops that
run before it commits anything more.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol

from spark_jobs import __version__
from spark_jobs.errors import ConcurrentRunError
from spark_jobs.names import LAST_RUN_VERSION, LOCK_PREFIX, LOCK_WAIT_SECONDS
from spark_jobs.storage.iceberg import swap_properties

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_jobs.config import SummaryConfig

FIELDS = ("token", "owner", "host", "boot-id", "pid-ns", "pid", "jvm-pid", "acquired-at", "expires-at")

log = logging.getLogger(__name__)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def machine_identity() -> tuple[str, str, str]:
    """(host name, boot id, PID namespace): process ids mean the same thing only where all three are equal."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), namespace


def pid_alive(pid: str | int) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def lock_state(properties: Mapping[str, str]) -> dict[str, str]:
    """The lock fields found in a table's properties (token '' or absent: free)."""
    return {name: properties.get(LOCK_PREFIX + name, "") for name in FIELDS}


class HeldLock(Protocol):
    """What a stage needs of the run lock it holds: ``RunLock``, or ``stages.runs.NoLock`` in a dry run."""

    token: str | None

    def check(self) -> None: ...

    def clear_at_release(self, *keys: str) -> None: ...

    def set_at_release(self, properties: Mapping[str, str]) -> None: ...


class RunLock:
    """Context manager holding the run lock of ``cfg``'s tables for ``owner`` (a run id)."""

    def __init__(
        self,
        spark: SparkSession,
        cfg: SummaryConfig,
        owner: str,
        wait_seconds: float = LOCK_WAIT_SECONDS,
        lease_seconds: float = 600,
        poll_seconds: float = 2,
    ) -> None:
        self.spark = spark
        self.table = cfg.control_table
        self.tables_name = cfg.summary_table
        self.owner = owner
        self.wait_seconds = wait_seconds
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.host, self.boot_id, self.pid_namespace = machine_identity()
        self.token: str | None = None
        self.properties: dict[str, str] = {}  # the control table's properties as seen when the lock was taken
        self._clear_at_release: set[str] = set()
        self._set_at_release: dict[str, str] = {}
        self._lost: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> Literal[False]:
        if exc_type is None:
            self.release()
            return False
        try:  # the run failed: its error is the one to report, even if the catalog refuses the release too
            self.release()
        except Exception as release_error:
            log.warning(
                "the run failed (%s) and releasing its lock on %s failed too (%s: %s); the lock frees itself when "
                "its lease ends, or at once for the next run on this machine",
                exc,
                self.table,
                type(release_error).__name__,
                release_error,
            )
        return False

    # --- public -----------------------------------------------------------------
    def acquire(self) -> None:
        token = uuid.uuid4().hex
        jvm_pid = self.spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[union-attr]
        claim = {
            "token": token,
            "owner": self.owner,
            "host": self.host,
            "boot-id": self.boot_id,
            "pid-ns": self.pid_namespace,
            "pid": os.getpid(),
            "jvm-pid": jvm_pid,
            "acquired-at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        deadline = time.monotonic() + self.wait_seconds
        while True:
            holder: dict[str, str] = {}

            def take_if_free(properties: dict[str, str], holder: dict[str, str] = holder) -> dict[str, object] | None:
                state = lock_state(properties)
                holder.update(state)
                if state["token"] and not self._is_stale(state):
                    return None
                taken = {LOCK_PREFIX + k: v for k, v in {**claim, "expires-at": self._lease_end()}.items()}
                return {**taken, LAST_RUN_VERSION: __version__}  # kept after the release: which code last wrote

            committed, seen = swap_properties(self.spark, self.table, take_if_free)
            if committed or holder.get("token") == token:  # (an unknown commit state that did commit)
                self.token = token
                self.properties = seen
                self._start_heartbeat()
                return
            if holder.get("token") and time.monotonic() >= deadline:
                raise ConcurrentRunError(
                    f"the tables of {self.tables_name} are in use by run {holder['owner']} (host {holder['host']}, "
                    f"pid {holder['pid']}, since {holder['acquired-at']}); nothing was changed by run {self.owner}: "
                    "retry when it has finished"
                )
            if holder.get("token"):
                time.sleep(self.poll_seconds)

    def check(self) -> None:
        """Raise before a commit if this run no longer holds the lock."""
        if self.token is None:
            raise ConcurrentRunError(f"run {self.owner} does not hold the lock of {self.tables_name}")
        if self._lost:
            raise ConcurrentRunError(
                f"run {self.owner} lost the lock of {self.tables_name}: {self._lost}; stopped before committing"
            )

    def clear_at_release(self, *keys: str) -> None:
        """Remove these control-table properties in the same commit that releases the lock."""
        self._clear_at_release.update(keys)

    def set_at_release(self, properties: Mapping[str, str]) -> None:
        """Set these control-table properties in the same commit that releases the lock (one commit less
        for state only the holder changes; lost if the run dies before it releases)."""
        self._set_at_release.update(properties)

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=60)
        if self.token is None:
            return
        mine = self.token
        self.token = None
        cleared = {LOCK_PREFIX + k: "" for k in FIELDS}

        def free_if_mine(properties: dict[str, str]) -> dict[str, str] | None:
            if lock_state(properties)["token"] != mine:
                return None
            return {**cleared, **{k: "" for k in self._clear_at_release if k in properties}, **self._set_at_release}

        for _ in range(5):
            committed, seen = swap_properties(self.spark, self.table, free_if_mine)
            if committed or lock_state(seen)["token"] != mine:
                return

    # --- internals ----------------------------------------------------------------
    def _lease_end(self) -> str:
        return f"{time.time() + self.lease_seconds:.3f}"

    def _is_stale(self, state: dict[str, str]) -> bool:
        try:
            if float(state["expires-at"]) < time.time():
                return True
        except ValueError:
            return True
        return self._same_machine(state) and not (pid_alive(state["pid"]) and pid_alive(state["jvm-pid"]))

    def _same_machine(self, state: dict[str, str]) -> bool:
        """The holder's process ids can be checked here (a holder of an older version, without ids: never)."""
        ours = (self.host, self.boot_id, self.pid_namespace)
        return all(ours) and (state["host"], state["boot-id"], state["pid-ns"]) == ours

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._lost = None
        self._heartbeat = threading.Thread(target=self._renew_until_stopped, name="summary-lock-lease", daemon=True)
        self._heartbeat.start()

    def _renew_until_stopped(self) -> None:
        interval = max(1.0, self.lease_seconds / 4)
        mine = self.token

        def extend_if_mine(properties: dict[str, str]) -> dict[str, str] | None:
            return {LOCK_PREFIX + "expires-at": self._lease_end()} if lock_state(properties)["token"] == mine else None

        while not self._stop.wait(interval):
            try:
                committed, seen = swap_properties(self.spark, self.table, extend_if_mine)
            except Exception as exc:  # keep trying until the lease would run out
                log.warning("could not renew the lease on %s: %s", self.table, str(exc).splitlines()[0])
                continue
            if lock_state(seen)["token"] != mine and not self._stop.is_set():
                self._lost = f"it is now held by {lock_state(seen)['owner'] or 'nobody'}"
                return
