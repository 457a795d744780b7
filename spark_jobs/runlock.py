"""One writer at a time per summary table set, through any Iceberg catalog.

The lock is a row of the ``<summary>_control`` Iceberg table. Taking it is a
compare-and-swap: a MERGE that sets a new token only where the token is still
the one this run read. Iceberg's serializable MERGE validation fails a commit
when another commit touched the same files since the read, so of two runs
racing for the lock exactly one wins; the other re-reads and waits or fails
with a message naming the holder.

A holder that died leaves its row behind. It counts as free when its process
is gone (same host) or its lease ran out; a live holder renews the lease from a
background thread, and stops its own run before any further commit if it ever
finds the lock taken from it.
"""

import os
import socket
import threading
import time
import uuid

from spark_jobs.errors import ConcurrentRunError

LOCK_ROW = "lock"


def sql_string(value):
    """A SQL string literal (or NULL) for ``value``."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Context manager holding the run lock of ``cfg``'s tables for ``owner`` (a run id)."""

    def __init__(self, spark, cfg, owner, wait_seconds=600, lease_seconds=600, poll_seconds=3):
        self.spark = spark
        self.table = cfg.control_table
        self.owner = owner
        self.wait_seconds = wait_seconds
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.token = None
        self.host = socket.gethostname()
        self._lost = None
        self._stop = threading.Event()
        self._heartbeat = None

    # --- public -----------------------------------------------------------------
    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def acquire(self):
        self._ensure_row()
        deadline = time.monotonic() + self.wait_seconds
        while True:
            state = self._read()
            if state is None or state["token"] is None or self._is_stale(state):
                token = uuid.uuid4().hex
                if self._swap(expected=state["token"] if state else None, token=token):
                    self.token = token
                    self._start_heartbeat()
                    return
                continue  # lost the race: look again at once
            if time.monotonic() >= deadline:
                raise ConcurrentRunError(
                    f"the tables of {self.table.rsplit('_control', 1)[0]} are in use by run {state['owner']} "
                    f"(host {state['host']}, pid {state['pid']}, since {state['acquired_at']} UTC, lease until "
                    f"{state['expires_at']} UTC); nothing was changed by run {self.owner}: retry when it has finished"
                )
            time.sleep(self.poll_seconds)

    def check(self):
        """Raise before a commit if this run no longer holds the lock."""
        if self.token is None:
            raise ConcurrentRunError(f"run {self.owner} does not hold the lock of {self.table}")
        if self._lost:
            raise ConcurrentRunError(f"run {self.owner} lost the lock of {self.table}: {self._lost}; stopped before committing")

    def release(self):
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=30)
        if self.token is not None:
            self._merge(
                f"t.token = {sql_string(self.token)}",
                {"token": "NULL", "expires_at": "NULL", "detail": sql_string("released by " + self.owner)},
            )
            self.token = None

    # --- internals ----------------------------------------------------------------
    def _ensure_row(self):
        if self._read() is not None:
            return
        try:
            self.spark.sql(
                f"MERGE INTO {self.table} t USING (SELECT {sql_string(LOCK_ROW)} AS name) s ON t.name = s.name "
                "WHEN MATCHED THEN UPDATE SET t.name = s.name "
                "WHEN NOT MATCHED THEN INSERT (name) VALUES (s.name)"
            )
        except Exception as exc:  # a concurrent run inserted it first
            if not _is_commit_conflict(exc):
                raise

    def _read(self):
        rows = self.spark.sql(
            f"SELECT token, owner, host, pid, jvm_pid, acquired_at, expires_at, "
            f"expires_at < current_timestamp() AS expired FROM {self.table} WHERE name = {sql_string(LOCK_ROW)}"
        ).collect()
        if len(rows) > 1:
            raise ConcurrentRunError(f"{self.table} holds {len(rows)} lock rows; delete all but one (see README, Operations)")
        return rows[0].asDict() if rows else None

    def _is_stale(self, state):
        if state["expired"]:
            return True
        same_host = state["host"] == self.host
        return same_host and not (pid_alive(state["pid"]) and pid_alive(state["jvm_pid"]))

    def _swap(self, expected, token):
        jvm_pid = self.spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        condition = "t.token IS NULL" if expected is None else f"t.token = {sql_string(expected)}"
        try:
            self._merge(
                condition,
                {
                    "token": sql_string(token),
                    "owner": sql_string(self.owner),
                    "host": sql_string(self.host),
                    "pid": str(os.getpid()),
                    "jvm_pid": str(jvm_pid),
                    "acquired_at": "current_timestamp()",
                    "expires_at": self._lease_end(),
                    "detail": sql_string("held by " + self.owner),
                },
            )
        except Exception as exc:
            if _is_commit_conflict(exc):
                return False
            raise
        state = self._read()
        return state is not None and state["token"] == token

    def _lease_end(self):
        return f"current_timestamp() + make_interval(0, 0, 0, 0, 0, 0, {self.lease_seconds})"

    def _merge(self, condition, assignments):
        set_clause = ", ".join(f"t.{column} = {value}" for column, value in assignments.items())
        self.spark.sql(
            f"MERGE INTO {self.table} t USING (SELECT {sql_string(LOCK_ROW)} AS name) s "
            f"ON t.name = s.name WHEN MATCHED AND {condition} THEN UPDATE SET {set_clause}"
        )

    def _start_heartbeat(self):
        self._stop.clear()
        self._lost = None
        self._heartbeat = threading.Thread(target=self._renew_until_stopped, name="summary-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def _renew_until_stopped(self):
        interval = max(1.0, self.lease_seconds / 4)
        while not self._stop.wait(interval):
            try:
                self._merge(f"t.token = {sql_string(self.token)}", {"expires_at": self._lease_end()})
                state = self._read()
                if state is None or state["token"] != self.token:
                    self._lost = f"now held by {state and state['owner']}"
                    return
            except Exception as exc:  # keep trying until the lease would run out
                if self._stop.is_set():
                    return
                print(f"warning: could not renew the lock lease of {self.table}: {str(exc).splitlines()[0]}", flush=True)


def _is_commit_conflict(exc):
    text = str(exc)
    markers = ("CommitFailedException", "ValidationException", "conflicting", "Cannot commit", "CONCURRENT", "AlreadyExists")
    return any(m.lower() in text.lower() for m in markers)
