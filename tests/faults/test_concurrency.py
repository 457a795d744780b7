"""Two stages on the same tables at once: each succeeds with correct tables, or fails cleanly and succeeds on retry."""

import threading
import time

import pytest

from spark_jobs.names import EXIT_LOCK_HELD
from tests.cli_support import submit, write_config
from tests.fault_tally import FULL
from tests.support import append_source, load, model_problems, record, run

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.faults]


def race(config, warehouse, commands, wait_seconds):
    """Start every command at once; returns {name: (exit code, report, output)}."""
    results = {}

    def start(name, args):
        results[name] = submit(config, warehouse, *args, "--lock-wait-seconds", str(wait_seconds), check=False)

    threads = [threading.Thread(target=start, args=item) for item in commands.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def failures(results):
    """The error and the last lines of output of each failed run, for the assertion message."""
    return {
        name: ((report or {}).get("error"), output.splitlines()[-40:])
        for name, (code, report, output) in results.items()
        if code != 0
    }


def retry_clean_failures(config, warehouse, commands, results):
    """A run that lost the race must say so, change nothing, and succeed when retried. Returns how many lost."""
    lost = 0
    for name, (code, report, _) in results.items():
        assert code in (0, EXIT_LOCK_HELD), failures(results)
        if code == EXIT_LOCK_HELD:
            lost += 1
            assert "are in use by run" in report["error"] and "nothing was changed" in report["error"], report["error"]
            assert report["exit_code"] == EXIT_LOCK_HELD
            submit(config, warehouse, *commands[name])
    return lost


PAIRS = {
    "forward + forward": lambda months: {
        "forward a": ("--mode", "forward", "--start-month", months[0]),
        "forward b": ("--mode", "forward", "--start-month", months[1]),
    },
    "forward + backfill": lambda months: {
        "forward": ("--mode", "forward", "--start-month", months[0]),
        "backfill": ("--mode", "backfill"),
    },
    "backfill + maintenance": lambda months: {
        "backfill": ("--mode", "backfill"),
        "maintenance": ("--mode", "maintenance"),
    },
}


# The reduced tier (make test) races the two pairs that share the most state; make test-faults races all three.
@pytest.mark.parametrize("pair", list(PAIRS) if FULL else ["forward + forward", "forward + backfill"])
def test_two_stages_at_once_succeed_correctly_or_fail_cleanly(spark, spark_warehouse, namespace, tmp_path, pair, tally):
    raw, cfg = load(namespace)
    config = write_config(tmp_path, namespace)
    monthly = [record(a, f"2024-0{m}", 2, bal=a * 100 + m, member=None if m > 1 else "M") for a in (1, 2, 3) for m in range(1, 6)]
    read = [r for r in monthly if r["rpt_mo"] <= "2024-02"]
    append_source(spark, cfg, read)
    run(spark, cfg, "initial", "2024-01", "2024-02")
    # Runs that wait for the lock (both must succeed), then runs that refuse to wait (one may lose and is retried);
    # the reduced tier runs one of the two rounds per pair.
    rounds = ((600, ("2024-04", "2024-03")), (0, ("2024-05", "2024-03")))
    if not FULL:
        index = list(PAIRS).index(pair) % 2
        rounds = rounds[index : index + 1]
    for wait_seconds, months in rounds:
        started = time.monotonic()
        appended = [r for r in monthly if r["rpt_mo"] in months and r not in read]
        if "backfill" in pair:  # late records: a correction (Case III) and a new account (Case I)
            appended += [record(a, "2024-01", 5 + wait_seconds, bal=7 * a) for a in (1, 4)]
        append_source(spark, cfg, appended)
        read += appended  # a forward run reads its month; a backfill reads everything appended
        commands = PAIRS[pair](months)
        results = race(config, spark_warehouse, commands, wait_seconds)
        if wait_seconds:
            assert all(code == 0 for code, _, _ in results.values()), failures(results)
        lost = retry_clean_failures(config, spark_warehouse, commands, results)
        problems = model_problems(spark, cfg, raw, read)
        tally.add(f"concurrent pair: {pair}", killed=lost, differences=len(problems), seconds=time.monotonic() - started)
        assert not problems, f"{pair} (lock wait {wait_seconds}s):\n" + "\n".join(problems)
