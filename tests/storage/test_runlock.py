"""The run lock: a compare-and-swap on control-table properties that exactly one run wins."""

import subprocess
import time

import pytest

from spark_jobs.errors import ConcurrentRunError
from spark_jobs.names import LOCK_PREFIX
from spark_jobs.storage.iceberg import java_table, swap_properties, table_properties
from spark_jobs.storage.runlock import RunLock
from spark_jobs.storage.tables import control_schema, create_table, small_table_properties
from tests.support import load

pytestmark = pytest.mark.spark


@pytest.fixture
def cfg(spark, namespace):
    _, cfg = load(namespace)
    create_table(spark, cfg, "control", cfg.control_table, control_schema(), small_table_properties(cfg))
    return cfg


def set_properties(spark, identifier, **properties):
    change = java_table(spark, identifier).updateProperties()
    for key, value in properties.items():
        change = change.set(key, value)
    change.commit()


def test_a_commit_between_reading_and_swapping_makes_the_swap_fail(spark, cfg):
    """The race two runs starting together hit: both see the lock free, only one may take it."""

    def decide_while_another_run_commits(properties):
        assert LOCK_PREFIX + "token" not in properties
        set_properties(spark, cfg.control_table, **{LOCK_PREFIX + "token": "other-run"})
        return {LOCK_PREFIX + "token": "this-run"}

    committed, _ = swap_properties(spark, cfg.control_table, decide_while_another_run_commits)

    assert committed is False
    assert table_properties(spark, cfg.control_table)[LOCK_PREFIX + "token"] == "other-run"


def test_a_held_lock_refuses_a_second_run_naming_the_holder_until_released(spark, cfg):
    with RunLock(spark, cfg, "run-a", wait_seconds=0):
        with pytest.raises(ConcurrentRunError, match="in use by run run-a"):
            RunLock(spark, cfg, "run-b", wait_seconds=0).acquire()
    second = RunLock(spark, cfg, "run-b", wait_seconds=0)
    second.acquire()
    assert table_properties(spark, cfg.control_table)[LOCK_PREFIX + "owner"] == "run-b"
    second.release()
    assert table_properties(spark, cfg.control_table).get(LOCK_PREFIX + "token", "") == ""


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(spark, cfg):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = RunLock(spark, cfg, "run-dead", wait_seconds=0)
    stale.acquire()
    stale._stop.set()  # the process "dies": no release, no heartbeat
    set_properties(spark, cfg.control_table, **{LOCK_PREFIX + "pid": str(dead.pid)})

    with RunLock(spark, cfg, "run-next", wait_seconds=0):
        assert table_properties(spark, cfg.control_table)[LOCK_PREFIX + "owner"] == "run-next"


def test_a_run_whose_lock_was_taken_stops_before_its_next_commit(spark, cfg):
    lock = RunLock(spark, cfg, "run-a", wait_seconds=0, lease_seconds=4)  # renews every second
    lock.acquire()
    try:
        lock.check()
        set_properties(spark, cfg.control_table, **{LOCK_PREFIX + "token": "thief", LOCK_PREFIX + "owner": "run-b"})
        deadline = time.monotonic() + 30
        while lock._lost is None and time.monotonic() < deadline:
            time.sleep(0.5)
        with pytest.raises(ConcurrentRunError, match="lost the lock.*held by run-b"):
            lock.check()
    finally:
        lock.release()
    assert table_properties(spark, cfg.control_table)[LOCK_PREFIX + "token"] == "thief"  # release leaves others' locks alone


@pytest.mark.parametrize("field", ["boot-id", "pid-ns"])
def test_a_dead_pid_under_our_host_name_on_another_machine_is_not_a_free_lock(spark, cfg, field):
    """Containers share host names and reuse pids: only the same boot and PID namespace make a pid checkable here."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = RunLock(spark, cfg, "run-elsewhere", wait_seconds=0)
    stale.acquire()
    stale._stop.set()  # it "dies" without releasing, on a machine that only looks like ours
    set_properties(spark, cfg.control_table, **{LOCK_PREFIX + "pid": str(dead.pid), LOCK_PREFIX + field: "another-" + field})

    with pytest.raises(ConcurrentRunError, match="in use by run run-elsewhere"):
        RunLock(spark, cfg, "run-next", wait_seconds=0).acquire()
    set_properties(spark, cfg.control_table, **{LOCK_PREFIX + "expires-at": str(time.time() - 1)})  # its lease runs out
    with RunLock(spark, cfg, "run-next", wait_seconds=0):
        assert table_properties(spark, cfg.control_table)[LOCK_PREFIX + "owner"] == "run-next"


def test_a_failed_runs_error_is_kept_when_releasing_its_lock_fails_too(spark, cfg):
    """A run that fails because the catalog went away must report that, not the release's own failure after it."""
    with pytest.raises(RuntimeError, match="the run's own failure"):
        with RunLock(spark, cfg, "run-a", wait_seconds=0):
            spark.sql(f"DROP TABLE {cfg.control_table}")  # the release's swap now fails: no such table
            raise RuntimeError("the run's own failure")


def test_a_failed_release_after_a_good_run_is_an_error(spark, cfg):
    with pytest.raises(Exception, match="(?i)does not exist|not found"):
        with RunLock(spark, cfg, "run-a", wait_seconds=0):
            spark.sql(f"DROP TABLE {cfg.control_table}")
