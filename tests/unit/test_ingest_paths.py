"""The ingest path is confined: real files and real symlinks, no Spark.

Files resolve under the roots (``airflow.landing_dir``, and ``$SUMMARY_INGEST_ROOTS`` for the command line), a
symlink leaving them is refused by the name it was given, a run reads a bounded number of files, ``/`` is never
walked, and a file that does not fit is refused without its header in the message.
"""

import dataclasses
import time

import pytest
from pyspark.sql import types as T

from spark_jobs.cli import main, parse_args
from spark_jobs.errors import SourceDataError
from spark_jobs.ingest_paths import MAX_FILES, expand_paths, ingest_roots
from spark_jobs.names import EXIT_BAD_INPUT, INGEST_ROOTS_ENV
from spark_jobs.report import RunReport
from spark_jobs.stages.ingest import fit_problems, ingest
from summary_airflow.submit import application_args
from tests.support import load


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    (folder / "2024-07").mkdir(parents=True)
    (folder / "2024-07" / "a.parquet").write_bytes(b"PAR1")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.csv").write_text("token_abcdef,password_123\n1,2\n")
    return folder, outside


def test_a_file_outside_landing_dir_is_refused(landing):
    folder, outside = landing
    with pytest.raises(SourceDataError, match="outside the ingest folders; refused") as refused:
        expand_paths([str(outside / "secret.csv")], roots=[str(folder)])
    assert str(outside / "secret.csv") in str(refused.value)
    for escape in (str(folder / ".." / "elsewhere" / "secret.csv"), str(folder / ".." / "elsewhere")):
        with pytest.raises(SourceDataError, match="outside the ingest folders"):
            expand_paths([escape], roots=[str(folder)])


def test_a_symlink_inside_landing_dir_pointing_outside_is_refused_by_its_own_name(landing):
    folder, outside = landing
    link = folder / "2024-07" / "feed.csv"
    link.symlink_to(outside / "secret.csv")
    for given in (str(link), str(folder), str(folder / "2024-07" / "*.csv")):  # named, found in a folder, by a glob
        with pytest.raises(SourceDataError) as refused:
            expand_paths([given], roots=[str(folder)])
        message = str(refused.value)
        assert str(link) in message and "outside the ingest folders" in message
        assert "secret" not in message and "token_abcdef" not in message, "neither the target nor its content"
    folder_link = folder / "everything"  # a symlinked folder given directly
    folder_link.symlink_to(outside)
    with pytest.raises(SourceDataError, match="a folder outside"):
        expand_paths([str(folder_link)], roots=[str(folder)])


def test_a_symlink_inside_landing_dir_pointing_inside_is_accepted(landing):
    folder, _ = landing
    link = folder / "latest.parquet"
    link.symlink_to(folder / "2024-07" / "a.parquet")
    assert expand_paths([str(link)], roots=[str(folder)]) == [(folder / "2024-07" / "a.parquet").resolve()]
    assert len(expand_paths([str(folder)], roots=[str(folder)])) == 2
    (folder / "odd.csv").symlink_to(folder / "2024-07" / "a.parquet")  # a .csv name for a Parquet file
    with pytest.raises(SourceDataError, match="odd.csv: a symlink to a file that is not .csv"):
        expand_paths([str(folder / "odd.csv")], roots=[str(folder)])


def test_a_folder_of_more_files_than_the_cap_is_refused(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    for i in range(MAX_FILES + 1):
        (folder / f"f{i:05}.parquet").touch()
    with pytest.raises(SourceDataError, match=f"more than {MAX_FILES} files"):
        expand_paths([str(folder)], roots=[str(folder)])
    with pytest.raises(SourceDataError, match=f"more than {MAX_FILES} files"):
        expand_paths([str(folder / "*.parquet")], roots=[str(folder)])
    with pytest.raises(SourceDataError, match="more than 100 entries to look through"):
        expand_paths([str(folder)], max_entries=100)  # the walk itself is bounded, even unconfined


def test_the_root_of_the_disk_is_refused_without_walking_it(landing):
    folder, _ = landing
    started = time.monotonic()
    for given in ("/", "/*", "/etc/*.csv", "/../../"):
        with pytest.raises(SourceDataError, match="outside the ingest folders"):
            expand_paths([given], roots=[str(folder)])
    assert time.monotonic() - started < 2


def test_a_landing_dir_given_as_a_glob_confines_to_the_folder_it_starts_from(landing):
    folder, outside = landing
    found = expand_paths([str(folder / "2024-*")], roots=[str(folder / "2024-*")])
    assert found == [(folder / "2024-07" / "a.parquet").resolve()]
    with pytest.raises(SourceDataError, match="outside the ingest folders"):
        expand_paths([str(outside)], roots=[str(folder / "2024-*")])


def test_object_store_uris_are_refused_with_a_clear_message(landing):
    folder, _ = landing
    for uri in ("s3://bucket/landing/x.parquet", "file:///etc/passwd.csv"):
        with pytest.raises(SourceDataError, match="object-store URIs are not supported by ingest"):
            expand_paths([uri], roots=None)


def test_the_command_line_roots_are_landing_dir_and_the_environment(tmp_path):
    assert ingest_roots(None, {}) is None, "neither set: the command line reads any path"
    assert ingest_roots("/data/landing", {}) == ["/data/landing"]
    assert ingest_roots("/data/landing", {INGEST_ROOTS_ENV: "/a:/b:"}) == ["/data/landing", "/a", "/b"]
    assert ingest_roots(None, {INGEST_ROOTS_ENV: "/a"}) == ["/a"]


def test_the_job_itself_confines_to_landing_dir_before_reading(landing, namespace):
    folder, outside = landing
    _, cfg = load(namespace)
    cfg = dataclasses.replace(cfg, airflow=dataclasses.replace(cfg.airflow, landing_dir=str(folder)))
    report = RunReport(mode="ingest", config=cfg.path, run_id="ingest-test")
    with pytest.raises(SourceDataError, match="outside the ingest folders"):
        ingest(None, cfg, [str(outside / "secret.csv")], report)  # type: ignore[arg-type]  # refused before Spark is used


def test_a_file_that_does_not_fit_is_refused_without_its_header():
    table = T.StructType([T.StructField("acct_id", T.LongType()), T.StructField("bal", T.IntegerType())])
    header = [f"secret_value_{i}_" + "x" * 60 for i in range(20)]
    file_schema = T.StructType([T.StructField("acct_id", T.LongType()), *(T.StructField(h, T.StringType()) for h in header)])
    problems = "; ".join(fit_problems(file_schema, table))
    assert problems == "missing column(s) ['bal']; 20 extra column(s) not in the source table"
    assert "secret_value" not in problems


def test_a_filter_or_path_starting_with_a_dash_round_trips_as_data():
    args = application_args(
        "c.json", "classify", "/r.json", backfill_filter="-1 = cons_acct_key", paths=["--mode=maintenance", "/b"]
    )
    assert "--backfill-filter=-1 = cons_acct_key" in args and "--path=--mode=maintenance" in args
    parsed = parse_args(args)
    assert parsed.mode == "classify" and parsed.backfill_filter == "-1 = cons_acct_key"
    assert parsed.path == ["--mode=maintenance", "/b"]
    assert parse_args(["--config", "c", "--path", "a", "b"]).path == ["a", "b"], "the old form still works"


def test_a_refused_command_line_writes_a_report_with_exit_code_2(tmp_path):
    report_file = tmp_path / "r.json"
    code = main(["--config", "c.json", "--mode", "ingest", "--report-file", str(report_file), "--backfill-filter"])
    assert code == EXIT_BAD_INPUT
    text = report_file.read_text()
    assert '"exit_code": 2' in text and "expected one argument" in text, "the operator reads it and does not retry"
