"""A class-data-sharing archive of what a stage's driver JVM loads, so every cold ``spark-submit`` starts warmer.

Each stage is a fresh JVM that loads and verifies some twenty thousand classes (Spark, Iceberg, Hadoop, Jackson,
the catalog's client) before it does any work: seconds of a small stage on a 2-core machine (bench/RESULTS.md).
The JDK can map those classes, already parsed and verified, from an archive file instead (AppCDS, JDK 13+).
``make setup`` builds one archive per JVM and class path: ``python -m spark_jobs.storage.class_archive`` runs
every stage kind once on a throw-away warehouse in one ``spark-submit`` started with ``-XX:ArchiveClassesAtExit``,
then checks that a ``spark-submit`` with the archive starts. Stages then pass ``-XX:SharedArchiveFile`` to their
driver JVM (the Airflow operator through ``spark.driver.extraJavaOptions``, an in-process session through its
launch conf). The JVM validates the archive against its own build and class path at start and runs without it when
they differ (``-Xshare:auto``, the default), so a stale or foreign archive costs its speed-up, never a stage.

Spark-free: the Airflow side reads it for every stage task.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version as installed_version
from pathlib import Path

from spark_jobs.names import CATALOGS_ENV, CLASS_ARCHIVE_ENV, WAREHOUSE_ENV
from spark_jobs.storage import jars

OFF = "off"
# What the launcher puts on the driver's class path besides Spark's jars (spark-class / SparkClassCommandBuilder):
# the archive records that path, so each archive is made for one set of them.
CLASS_PATH_DIRS_ENV = ("SPARK_CONF_DIR", "HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_DIST_CLASSPATH")


def blocking_folders() -> list[str]:
    """Folders on the driver's class path that hold files: the JVM maps no archive then (JDK 17: "directory is not
    empty"), so none is built or given. Spark puts ``$SPARK_CONF_DIR`` there (else ``$SPARK_HOME/conf``), and
    ``$HADOOP_CONF_DIR`` and ``$YARN_CONF_DIR`` when set."""
    folders = [os.environ.get("SPARK_CONF_DIR") or os.path.join(_spark_home(), "conf")]
    folders += [os.environ[name] for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR") if os.environ.get(name)]
    return [folder for folder in folders if os.path.isdir(folder) and any(os.scandir(folder))]


def _spark_home() -> str:
    """``$SPARK_HOME``, else the installed pyspark's folder (where spark-submit finds its jars)."""
    from importlib.util import find_spec

    spec = find_spec("pyspark")
    home = os.environ.get("SPARK_HOME") or (os.path.dirname(spec.origin) if spec and spec.origin else "")
    return os.path.realpath(home)


def java_home() -> Path | None:
    """The JDK ``spark-submit`` runs: ``$JAVA_HOME``, else the ``java`` on ``PATH`` (spark-class's own choice)."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"]).resolve()
    java = shutil.which("java")
    return Path(java).resolve().parent.parent if java else None


def archive_key() -> str:
    """A digest of what an archive is only valid for: the JDK build, Spark's version and class path, our jars."""
    home = java_home()
    release = home / "release" if home else None
    identity = {
        "java": release.read_text(errors="replace") if release and release.is_file() else str(home),
        "spark": [installed_version("pyspark"), _spark_home()],
        "class_path": {name: os.environ.get(name, "") for name in CLASS_PATH_DIRS_ENV},
        "jars": sorted(artifact.file_name for artifact in (*jars.required_artifacts(), *jars.extra_artifacts())),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def archive_path() -> Path | None:
    """Where this environment's archive is (``$SUMMARY_CLASS_ARCHIVE`` names a file); None when turned off."""
    chosen = os.environ.get(CLASS_ARCHIVE_ENV, "").strip()
    if chosen.lower() == OFF:
        return None
    if chosen:
        return Path(chosen)
    return jars.cache_dir() / f"driver-classes-{archive_key()}.jsa"


# spark_config.quick_start's driver option (C1 only; storage/session.py sets the SQL side): kept here, with the
# other driver JVM options, as the Airflow side adds it and imports nothing that needs Spark.
QUICK_START_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def driver_java_options() -> str:
    """The driver JVM options that use the archive; empty when it is off or not built (a stage then starts as before)."""
    path = archive_path()
    return f"-XX:SharedArchiveFile={path}" if path and path.is_file() and not blocking_folders() else ""


def with_driver_java_options(conf: dict[str, str], quick_start: bool = False) -> dict[str, str]:
    """``conf`` with the archive's option (and C1 only, for ``spark_config.quick_start``) before any
    ``spark.driver.extraJavaOptions`` it has: theirs come last, so theirs win (an archive of their own, or
    ``-Xshare:off``, replaces ours). The one place both the stage operator and an in-process session get them."""
    theirs = conf.get("spark.driver.extraJavaOptions", "")
    archive = driver_java_options()
    if "SharedArchiveFile" in theirs or "-Xshare:off" in theirs:
        archive = ""
    ours = " ".join(option for option in (archive, QUICK_START_JAVA_OPTIONS if quick_start else "") if option)
    if not ours:
        return conf
    return {**conf, "spark.driver.extraJavaOptions": f"{ours} {theirs}".strip()}


def build(log: Callable[[str], None] = print, rebuild: bool = False) -> Path | None:
    """Train and write this environment's archive (atomically), check that it loads; None when it cannot be used.

    Once per environment: an archive already built for it is kept (``rebuild`` trains a new one)."""
    target = archive_path()
    if target is None:
        log(f"${CLASS_ARCHIVE_ENV}={OFF}: no class archive built")
        return None
    blocking = blocking_folders()
    if blocking:
        log(
            f"no class archive built: {', '.join(blocking)} is on the driver's class path and holds files, and the JVM "
            "then maps no archive. Give Spark's log settings as SPARK_SUBMIT_OPTS=-Dlog4j2.configurationFile=FILE and "
            f"spark-defaults as --properties-file instead, or set {CLASS_ARCHIVE_ENV}={OFF} to silence this"
        )
        return None
    if target.is_file() and not rebuild:
        log(f"class archive present: {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    jar_paths = [str(p) for p in jars.ensure_jars(log=log)]
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # The training writes a throw-away warehouse of its own, never a catalog the deployment names.
    for name in (CLASS_ARCHIVE_ENV, CATALOGS_ENV, WAREHOUSE_ENV):
        env.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="summary-class-archive-") as tmp:
        partial = Path(tmp) / target.name
        train = [spark_submit, "--jars", ",".join(jar_paths), "--driver-java-options", f"-XX:ArchiveClassesAtExit={partial}",
                 __file__, "--train", tmp]  # fmt: skip
        log(f"training the class archive: every stage kind once, in one spark-submit ({target})")
        _run(train, env, "training")
        if not partial.is_file():
            raise RuntimeError(f"the training JVM wrote no archive at {partial}")
        hello = Path(tmp) / "hello.py"
        hello.write_text("from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().range(1).count()\n")
        # -Xshare:on fails the start when the archive does not load, instead of silently running without it.
        _run([spark_submit, "--driver-java-options", f"-XX:SharedArchiveFile={partial} -Xshare:on", str(hello)], env, "check")
        shutil.move(str(partial), target.with_suffix(".part"))
        target.with_suffix(".part").replace(target)  # atomic: a half-written archive never looks built
    log(f"class archive ready: {target} ({target.stat().st_size / 2**20:.0f} MB)")
    return target


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"class archive {what} failed ({' '.join(command)}):\n{(result.stdout + result.stderr)[-3000:]}")


def train(workdir: Path) -> None:
    """Every stage kind once, through the command line, on a tiny warehouse: what a stage's driver loads."""
    from spark_jobs.sample_data import generate, generate_late

    os.environ[WAREHOUSE_ENV] = str(workdir / "warehouse")
    example = jars.PROJECT_ROOT.parent / "include" / "configs" / "summary_config.json"
    config = workdir / "summary_config.json"
    config.write_text(example.read_text().replace("local.db.", "local.class_archive."))
    months = ("2024-01", "2024-02", "2024-03")
    generate(workdir / "source", 60, months[0], len(months), seed=3)
    generate_late(workdir / "source", 60, months[0], len(months), seed=3)
    generate_late(workdir / "later", 60, months[0], len(months), seed=5)
    files = [f"--path={workdir / 'source' / f'accounts_all_{m}.parquet'}" for m in months]
    late = f"--path={workdir / 'source' / 'accounts_all_late.parquet'}"
    classify_report = workdir / "classify.json"
    steps = [
        ["--mode", "ingest", *files],
        ["--mode", "initial", "--start-month", months[0], "--end-month", months[1]],
        ["--mode", "forward", "--start-month", months[2]],
        ["--mode", "ingest", late],
        ["--mode", "classify", "--report-file", str(classify_report)],
    ]
    for step in steps:
        _stage(config, step)
    run_id = json.loads(classify_report.read_text())["run_id"]
    for case in ("case-i", "case-ii", "case-iii"):
        _stage(config, ["--mode", case, "--run-id", run_id])
    later = f"--path={workdir / 'later' / 'accounts_all_late.parquet'}"
    for step in (["--mode", "ingest", later], ["--mode", "backfill"], ["--mode", "check"], ["--mode", "maintenance"]):
        _stage(config, step)


def _stage(config: Path, argv: list[str]) -> None:
    from spark_jobs import cli

    code = cli.main(["--config", str(config), *argv])
    if code != 0:
        raise SystemExit(f"class archive training: {' '.join(argv)} exited {code}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="train a new archive even if one is built")
    parser.add_argument("--train", metavar="DIR", help=argparse.SUPPRESS)  # inside the training spark-submit
    args = parser.parse_args(argv)
    if args.train:
        train(Path(args.train))
    else:
        build(rebuild=args.rebuild)


if __name__ == "__main__":
    main()
