"""``make bench [ARGS=--small]``: forward and Case III throughput, memory and growth, ours vs v4, side by side.

Each scenario gets its own warehouse on Spark local[*] with the local Iceberg
catalog, and each of its steps its own process: the set-up, then ours, v4 and
the floor, each timed from a cold JVM on the tables the set-up left, as a
scheduled ``spark-submit`` runs (in one process, the step timed first would pay
the just-in-time compilation the later ones reuse). ``--small`` runs all of its
scenarios in one process, as JVM start-up would otherwise dominate it. This
script samples the peak resident memory of each process tree, prints one table
and writes it, with the machine, versions and settings, to bench/RESULTS.md
(``--small`` writes bench/RESULTS-small.md).
"""

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench import fixed_cost
from bench.scenarios import STEPS

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCH-RESULT "  # bench.scenarios prints each result on a line starting with this
FULL = {
    "forward": [{"accounts": 100_000}, {"accounts": 1_000_000}],
    "case_iii": [{"accounts": 100_000, "history": 24}, {"accounts": 100_000, "history": 48}],
}
SMALL = {  # one process; Case III at 12 and 24 months of history (the 12 copies the first half of the 24's initial load)
    "case_iii": [{"accounts": 2_000, "history": 24}, {"accounts": 2_000, "history": 12, "copy_from_history": 24}],
    "forward": [{"accounts": 10_000}],
}
ORDER = ["forward", "case_iii"]  # the table's order of scenarios, by scale within each


def run_plan(plan, warehouse=None):
    """Run ``[[name, arguments], ...]`` in one process; its results, each with the process's peak RSS."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if warehouse:
        env["BENCH_WAREHOUSE"] = str(warehouse)
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.scenarios", json.dumps(plan)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak = {"rss": 0}

    def sample():
        parent = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
                peak["rss"] = max(peak["rss"], rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"scenarios {plan} failed:\n{stderr[-4000:]}")
    results = [json.loads(line[len(RESULT_PREFIX) :]) for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    for result in results:
        result["peak_rss_gb"] = round(peak["rss"] / 2**30, 2)
    return results


def run_steps(name, arguments):
    """One scenario, each of its steps in a fresh process on one warehouse; the result with each step's RSS peak."""
    warehouse = Path(tempfile.mkdtemp(prefix="summary-bench-"))
    result = {}
    try:
        for step in STEPS[name]:
            (figures,) = run_plan([[name, {**arguments, "steps": [step], "state": result}]], warehouse)
            result.update(figures, **{f"{step}_rss_gb": figures["peak_rss_gb"]})
    finally:
        shutil.rmtree(warehouse, ignore_errors=True)
    result["peak_rss_gb"] = result["ours_rss_gb"]
    return result


def ratio(v4, ours):
    return f"{v4 / ours:.1f}x" if ours else "n/a"


TARGET_SPEEDUP = {"forward": 2.0, ("case_iii", 24): 10.0, ("case_iii", 48): 20.0}  # issue 15: v4's time divided by


def target(r):
    """The seconds a target allows (v4's time over the speed-up asked for), or None when none is set."""
    speedup = TARGET_SPEEDUP.get("forward" if r["scenario"] == "forward" else (r["scenario"], r.get("history")))
    return round(r["v4_s"] / speedup, 1) if speedup else None


def floor_cells(r):
    floor, allowed = r.get("floor_s"), target(r)
    verdict = ""
    if floor is not None and allowed is not None:
        verdict = " (floor above target)" if floor > allowed else " (floor below target)"
    return f"{allowed if allowed is not None else ''} | {floor if floor is not None else ''}{verdict}"


def v4_rss(r):
    return f"; v4 process RSS peak {r['v4_rss_gb']} GB" if "v4_rss_gb" in r else ""


def table(results):
    lines = [
        "| scenario | scale | ours (s) | v4 (s) | v4/ours | target (s) | floor (s) | ours heap peak (GB) | v4 heap peak (GB) "
        "| ours process RSS peak (GB) | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["scenario"] == "forward":
            rate = f"{r['rows'] / r['ours_s']:,.0f} account-months/s ours, {r['v4_rows'] / r['v4_s']:,.0f} v4"
            lines.append(
                f"| forward month | {r['accounts']:,} accounts | {r['ours_s']} | {r['v4_s']} | {ratio(r['v4_s'], r['ours_s'])} | "
                f"{floor_cells(r)} | {r['ours_heap_gb']} | {r['v4_heap_gb']} | {r['peak_rss_gb']} | {rate}; "
                f"phases {r['phases']}; files written {r.get('files_written')}; floor parts {r.get('floor_parts')}{v4_rss(r)} |"
            )
        else:
            scanned = r.get("classify_scans", {})
            summary_scan = sum(v["bytes"] for k, v in scanned.items() if k.endswith(".summary") and isinstance(v, dict))
            share = f"{100 * summary_scan / r['summary_bytes']:.1f}%" if r["summary_bytes"] else "n/a"
            lines.append(
                f"| Case III backfill | {r['accounts']:,} accounts x {r['history']} months, {r['corrections']} corrections | "
                f"{r['ours_s']} | {r['v4_s']} | {ratio(r['v4_s'], r['ours_s'])} | {floor_cells(r)} | {r['ours_heap_gb']} | "
                f"{r['v4_heap_gb']} | {r['peak_rss_gb']} | rows written {r['rows_written']}; "
                f"floor parts {r.get('floor_parts')}{v4_rss(r)} |"
            )
            summary_scans = [v for k, v in scanned.items() if k.endswith(".summary") and isinstance(v, dict)]
            columns = [c for v in summary_scans for c in v.get("columns", [])]
            column_share = r.get("classify_column_share")
            needed = (
                f"; of those files it reads only the columns {', '.join(columns)}: {100 * column_share:.1f}% of their bytes, "
                f"about {summary_scan * column_share / 2**20:,.1f} MB"
                if column_share is not None
                else ""
            )
            lines.append(
                f"| classifier (dry run) | same data | {r['classify_s']} | | | | | | | | opens {share} of summary's file bytes "
                f"({summary_scan:,} of {r['summary_bytes']:,}){needed}; accounts by case {r['accounts_by_case']} |"
            )
    return "\n".join(lines)


def machine():
    import pyspark

    from spark_jobs.storage.jars import ICEBERG_VERSION

    return (
        f"{platform.node()}: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB, "
        f"{platform.platform()}, Python {platform.python_version()}, Spark {pyspark.__version__} local[*], "
        f"Iceberg {ICEBERG_VERSION} (JDBC catalog on SQLite), driver memory 4g (the target peak), 8 shuffle partitions at start"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a scale that finishes in a few minutes")
    args = parser.parse_args(argv)
    plan = SMALL if args.small else FULL
    scenarios = [[name, arguments] for name, runs in plan.items() for arguments in runs]
    processes = [scenarios] if args.small else [[scenario] for scenario in scenarios]
    results = []
    for scenarios in processes:
        print(f"running {scenarios} ...", flush=True)
        started = time.monotonic()
        results += run_plan(scenarios) if args.small else [run_steps(*scenarios[0])]
        print(f"  done in {time.monotonic() - started:.0f} s: {json.dumps(results[-len(scenarios) :])}", flush=True)
    results.sort(key=lambda r: (ORDER.index(r["scenario"]), r["accounts"], r.get("history", 0)))
    print("running the fixed cost of small stages (fresh spark-submits) ...", flush=True)
    small_stages = fixed_cost.measure()
    heading = f"Fixed cost of a small stage (medians of {small_stages['repeats']})"
    text = f"{table(results)}\n\n{heading}:\n\n{fixed_cost.table(small_stages)}"
    results.append({"scenario": "fixed_cost", **small_stages})
    print(text)
    out = ROOT / "bench" / ("RESULTS-small.md" if args.small else "RESULTS.md")
    previous = out.read_text() if out.exists() else ""
    notes = previous.split("## Notes", 1)[1] if "## Notes" in previous else "\n"
    out.write_text(
        f"# Benchmark results{' (--small)' if args.small else ''}\n\n"
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.\n\n{text}\n\n"
        f"Raw results:\n\n```\n{json.dumps(results, indent=1)}\n```\n\n## Notes{notes}"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
