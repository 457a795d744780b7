"""Write summary and latest_summary on a run's own branches, then publish both: recoverable without a staging table.

Iceberg commits one table at a time, and a run changes two. So every path
that writes them uses ``RunBranches`` as a context manager (as PyIceberg's
``Transaction``: its exit commits)::

    with RunBranches(spark, cfg, run_id, lock) as branches:
        ...write to branches.target(cfg.summary_table) and branches.target(cfg.latest_table)...

which:

1. creates a branch ``run_<id>`` on each table at its current snapshot;
2. writes its rows to those branches (readers of ``main`` see nothing yet);
3. **decides**: one compare-and-swap on the control table records
   ``summary-pipeline.publish.<branch>``, and only while the run still holds the lock;
4. fast-forwards each table's ``main`` to its branch and removes the branch
   (one metadata commit per table: the tables disagree for milliseconds).

An error inside the block removes the branches (nothing was decided, nothing
published), and so does ``abandon()`` (a batch that found nothing to write).

Whoever takes the run lock next looks at what a dead run left (``recover``): a
publish mark means the run had decided, so every table whose branch is still
there is fast-forwarded and the mark cleared; a branch without a mark was never
decided and is simply removed (by maintenance: it is invisible to readers and
to every later run). Both are metadata operations: recovery reads and writes
no rows, so a run can die anywhere and its retry starts at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol

from spark_jobs.errors import ConcurrentRunError
from spark_jobs.faults import crash_point
from spark_jobs.names import LOCK_PREFIX, PUBLISH_PREFIX
from spark_jobs.storage.iceberg import branch_head, java_table, update_properties

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_jobs.config import SummaryConfig
    from spark_jobs.storage.runlock import HeldLock

BRANCH_PREFIX = "run_"


class Clock(Protocol):
    """Takes the time of each phase (``stages.batch.PhaseClock``)."""

    def lap(self, phase: str) -> None: ...


def branch_name(run_id: str) -> str:
    """A branch name from a run id: letters, digits and underscores only (it becomes part of an identifier)."""
    return BRANCH_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", run_id)


def on_branch(identifier: str, branch: str) -> str:
    """The Spark identifier that reads and writes ``branch`` of ``identifier``."""
    return f"{identifier}.branch_{branch}"


def published_tables(cfg: SummaryConfig) -> tuple[str, str]:
    return (cfg.summary_table, cfg.latest_table)


class RunBranches:
    """One batch's branches of summary and latest_summary, and their publication: the one commit protocol.

    As a context manager (``lock``: the run lock the batch holds): entering checks the lock and opens the
    branches; leaving publishes them (after checking the lock again), or removes them when the block raised
    or called ``abandon()``. ``clock`` times the publication.
    """

    def __init__(
        self, spark: SparkSession, cfg: SummaryConfig, run_id: str, lock: HeldLock | None = None, clock: Clock | None = None
    ) -> None:
        self.spark, self.cfg, self.run_id, self.lock, self.clock = spark, cfg, run_id, lock, clock
        self.branch = branch_name(run_id)
        self.opened = False
        self.abandoned = False
        self.base: dict[str, int | None] = {}  # each table's snapshot the branch starts at

    def __enter__(self) -> RunBranches:
        if self.lock is None:
            raise TypeError("RunBranches as a context manager needs the run lock it publishes under")
        self.lock.check()
        try:
            self.open()
        except BaseException:
            self.discard()  # (whichever branch was created)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> Literal[False]:
        if exc_type is not None or self.abandoned:
            self.discard()
            return False
        assert self.lock is not None  # (checked on entering)
        self.lock.check()  # (a lost lock leaves the branches: invisible, removed by maintenance)
        self.publish(self.lock)
        if self.clock is not None:
            self.clock.lap("publish")
        return False

    def abandon(self) -> None:
        """Nothing to publish after all: leaving the block removes the branches instead."""
        self.abandoned = True

    def open(self) -> None:
        """Create the branches at each table's current snapshot (a table without one gets an empty branch)."""
        self.opened = True  # (from the first: ``discard`` removes whichever exist)
        for identifier in published_tables(self.cfg):
            table = java_table(self.spark, identifier)
            snapshot = table.currentSnapshot()
            self.base[identifier] = snapshot.snapshotId() if snapshot is not None else None
            manage = table.manageSnapshots()
            if self.branch in table.refs():  # a retry of this very batch in this process: start again
                manage = manage.removeBranch(self.branch)
            if snapshot is None:
                manage.createBranch(self.branch).commit()
            else:
                manage.createBranch(self.branch, snapshot.snapshotId()).commit()
        crash_point("after_branches", self.spark)

    def target(self, identifier: str) -> str:
        return on_branch(identifier, self.branch)

    def wrote(self, identifier: str) -> dict[str, str] | None:
        """The summary of the newest snapshot written to the branch of ``identifier`` (None: nothing written)."""
        head, summary = branch_head(self.spark, identifier, self.branch)
        return None if head is None or head == self.base.get(identifier) else summary

    def publish(self, lock: HeldLock) -> None:
        """Decide (a CAS that holds only while ``lock`` is held), then fast-forward both tables."""
        mark = PUBLISH_PREFIX + self.branch
        lock_token = lock.token

        def decide(properties: dict[str, str]) -> dict[str, str] | None:
            if properties.get(mark):
                return None
            if lock_token is not None and properties.get(LOCK_PREFIX + "token") != lock_token:
                raise LockLostBeforePublishing(self.branch)
            return {mark: self.run_id}

        update_properties(self.spark, self.cfg.control_table, decide)
        crash_point("after_publish_decided", self.spark)
        fast_forward(self.spark, self.cfg.summary_table, self.branch)
        crash_point("after_summary_published", self.spark)
        fast_forward(self.spark, self.cfg.latest_table, self.branch)
        crash_point("after_latest_published", self.spark)
        lock.clear_at_release(mark)  # only now: a run that fails in between leaves the mark for the next to finish

    def discard(self) -> None:
        """Remove the branches (a run that stops before deciding: nothing was published)."""
        if self.opened:
            remove_branches(self.spark, published_tables(self.cfg), lambda name: name == self.branch)


class LockLostBeforePublishing(ConcurrentRunError):
    def __init__(self, branch: str) -> None:
        super().__init__(f"the run lock was taken from this run before it published branch {branch}; nothing was published")


def fast_forward(spark: SparkSession, identifier: str, branch: str) -> bool:
    """Move ``main`` of ``identifier`` to the head of ``branch`` and remove the branch, in one commit.

    Returns False when the branch no longer exists (published before). Under the run lock nothing else
    commits to main, so main is an ancestor of the branch; if it is not, Iceberg refuses and says so.
    """
    table = java_table(spark, identifier)
    if branch not in table.refs():
        return False
    # (on a table that has no snapshot yet, main is created at the branch's head)
    table.manageSnapshots().fastForwardBranch("main", branch).removeBranch(branch).commit()
    return True


def remove_branches(spark: SparkSession, identifiers: Iterable[str], which: Callable[[str], bool]) -> list[str]:
    """Remove every run branch of the tables for which ``which(name)`` is true; returns 'table@branch' removed."""
    removed = []
    for identifier in identifiers:
        table = java_table(spark, identifier)
        names = [name for name in table.refs() if name.startswith(BRANCH_PREFIX) and which(name)]
        if names:
            manage = table.manageSnapshots()
            for name in names:
                manage = manage.removeBranch(name)
            manage.commit()
            removed += [f"{identifier}@{name}" for name in names]
    return removed


def decided_branches(properties: Mapping[str, str]) -> dict[str, str]:
    """Branch -> run id of every run that decided to publish (control-table properties)."""
    return {k[len(PUBLISH_PREFIX) :]: v for k, v in sorted(properties.items()) if k.startswith(PUBLISH_PREFIX) and v}


def recover(spark: SparkSession, cfg: SummaryConfig, control_properties: Mapping[str, str]) -> list[str]:
    """Finish publishing what a dead run had decided to publish; returns those runs' ids.

    ``control_properties``: the control table's properties as the lock holder saw them when it took the lock.
    """
    decided = decided_branches(control_properties)
    for branch in decided:
        for identifier in published_tables(cfg):
            fast_forward(spark, identifier, branch)
    if decided:
        marks = {PUBLISH_PREFIX + b for b in decided}
        update_properties(spark, cfg.control_table, lambda p: {k: "" for k in marks if p.get(k)} or None)
    return list(decided.values())
