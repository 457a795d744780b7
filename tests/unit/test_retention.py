"""Retention of event logs and run reports, on real files with real mtimes (os.utime), links included."""

import logging
import os
import time

import pytest

from summary_airflow import settings
from summary_airflow.retention import DAY_SECONDS, prune_event_logs, prune_older_than, prune_reports, prune_stage_leftovers

NOW = time.time()


def _aged(path, days):
    """Set ``path``'s mtime to ``days`` days before NOW (the link itself for a link); return it."""
    stamp = NOW - days * DAY_SECONDS
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def _file(path, days, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return _aged(path, days)


def _rolling_log(folder, app_id, days, newest_days=None):
    """A rolling event log: ``eventlog_v2_<app>/`` with its event files and status file, all ``days`` old (the
    newest event file ``newest_days`` old when given)."""
    log_dir = folder / f"eventlog_v2_{app_id}"
    _file(log_dir / f"events_1_{app_id}.zstd", days)
    _file(log_dir / f"events_2_{app_id}.zstd", days if newest_days is None else newest_days)
    _file(log_dir / f"appstatus_{app_id}", days)
    return _aged(log_dir, days)


def test_only_event_logs_older_than_the_retention_go(tmp_path):
    events = tmp_path / "spark-events"
    old_rolling = _rolling_log(events, "local-1700000000000", 20)
    new_rolling = _rolling_log(events, "app-20260101000000-0001", 3)
    still_written = _rolling_log(events, "app-20251101000000-0002", 40, newest_days=0.1)  # its app is still running
    old_plain = _file(events / "application_1700000000000_0001.zstd", 15)
    old_in_progress = _file(events / "local-1700000000001.inprogress", 30)  # a crashed driver's log
    not_a_log = _file(events / "notes.txt", 400)  # not Spark's name: not ours to delete

    removed = prune_event_logs(events, 14, NOW)

    assert sorted(p.name for p in removed) == sorted([old_rolling.name, old_plain.name, old_in_progress.name])
    assert not old_rolling.exists() and not old_plain.exists() and not old_in_progress.exists()
    assert new_rolling.is_dir() and len(list(new_rolling.iterdir())) == 3
    assert still_written.is_dir(), "a rolling log that got a new file recently is kept whatever its folder's age"
    assert not_a_log.exists()


def test_links_are_never_followed_and_their_targets_survive(tmp_path):
    events = tmp_path / "spark-events"
    events.mkdir()
    outside = tmp_path / "outside"
    target_file = _file(outside / "precious.zstd", 100)
    target_dir = outside / "precious_dir"
    _file(target_dir / "inside.txt", 100)
    _aged(target_dir, 100)

    # Links named like event logs, old themselves, pointing out of the folder.
    link_to_file = events / "local-1600000000000.zstd"
    link_to_file.symlink_to(target_file)
    _aged(link_to_file, 100)
    link_to_dir = events / "eventlog_v2_local-1600000000001"
    link_to_dir.symlink_to(target_dir, target_is_directory=True)
    _aged(link_to_dir, 100)
    # An old rolling log whose folder holds a link out: the folder goes, the link's target stays.
    rolling = _rolling_log(events, "local-1600000000002", 100)
    inner_link = rolling / "events_3_local-1600000000002.zstd"
    inner_link.symlink_to(target_file)
    _aged(inner_link, 100)
    _aged(rolling, 100)

    removed = prune_event_logs(events, 14, NOW)

    assert [p.name for p in removed] == [rolling.name]
    assert link_to_file.is_symlink() and link_to_dir.is_symlink(), "a link in the folder is left as it is"
    assert target_file.read_text() == "x" and (target_dir / "inside.txt").read_text() == "x"
    assert not rolling.exists()


def test_a_folder_that_is_a_link_is_not_walked(tmp_path, caplog):
    real = tmp_path / "real"
    old = _file(real / "local-1500000000000.zstd", 100)
    link = tmp_path / "events-link"
    link.symlink_to(real, target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="summary_airflow.retention"):
        assert prune_event_logs(link, 14, NOW) == []
    assert old.exists()
    assert "not a folder" in caplog.text


def test_a_uri_folder_is_left_to_the_history_server_and_a_file_uri_is_pruned(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="summary_airflow.retention"):
        assert prune_event_logs("s3a://bucket/spark-events", 14, NOW) == []
    assert "spark.history.fs.cleaner" in caplog.text
    old = _file(tmp_path / "ev" / "local-1500000000000.zstd", 30)
    assert prune_event_logs((tmp_path / "ev").as_uri(), 14, NOW) == [old]
    assert prune_event_logs(tmp_path / "missing", 14, NOW) == []


def test_the_retention_is_counted_in_whole_days_from_now(tmp_path):
    just_kept = _file(tmp_path / "local-1.zstd", 13.9)
    just_gone = _file(tmp_path / "local-2.zstd", 14.1)
    assert prune_older_than(tmp_path, 14, NOW) == [just_gone]
    assert just_kept.exists()
    with pytest.raises(ValueError, match="at least one day"):
        prune_older_than(tmp_path, 0, NOW)


def _report(folder, config, kind, days, run="scheduled__2026-01-01", task="forward_month"):
    return _file(folder / settings.report_file_name(settings.dag_id(config, kind), task, run, 1), days, "{}")


def test_only_this_configs_old_reports_go(tmp_path):
    reports = tmp_path / "reports"
    ours_old = [_report(reports, "a", kind, 100) for kind in ("forward", "backfill", "maintenance", "ingest")]
    ours_new = _report(reports, "a", "forward", 10, run="manual__2026-03-01")
    # Config "a_b" shares the prefix "a_": its DAG ids are a_b_forward, ... and its reports are not a's to prune.
    other_old = _report(reports, "a_b", "forward", 100)
    other_config = _report(reports, "other", "backfill", 400)
    stray = _file(reports / "notes.json", 400)
    link = reports / settings.report_file_name("a_forward", "t", "linked", 1)
    link.symlink_to(other_config)
    _aged(link, 400)

    removed = prune_reports(reports, "a", 90, NOW)

    assert sorted(removed) == sorted(ours_old)
    assert ours_new.exists() and other_old.exists() and other_config.exists() and stray.exists() and link.is_symlink()


def test_a_stage_prunes_both_folders_and_never_fails_over_it(tmp_path, monkeypatch, caplog):
    events, reports = tmp_path / "events", tmp_path / "reports"
    old_log = _file(events / "local-1.zstd", 20)
    old_report = _report(reports, "a", "forward", 100)
    lines = []
    removed = prune_stage_leftovers("a", 14, 90, str(events), reports, NOW, log_line=lines.append)
    assert sorted(removed) == sorted([old_log, old_report])
    assert lines == ["pruned 1 old event logs: local-1.zstd", f"pruned 1 old run reports: {old_report.name}"]
    # Event logs off: only the reports; a broken folder argument is logged, not raised.
    assert prune_stage_leftovers("a", 14, 90, None, reports, NOW) == []

    def broken(*args, **kwargs):
        raise PermissionError("denied")

    monkeypatch.setattr("summary_airflow.retention.prune_older_than", broken)
    with caplog.at_level(logging.WARNING, logger="summary_airflow.retention"):
        assert prune_stage_leftovers("a", 14, 90, str(events), reports, NOW) == []
    assert "could not prune old event logs: PermissionError: denied" in caplog.text


def test_an_undeletable_entry_is_skipped_and_the_rest_still_go(tmp_path, monkeypatch, caplog):
    folder = tmp_path / "ev"
    stuck = _file(folder / "local-1.zstd", 30)
    gone = _file(folder / "local-2.zstd", 30)
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if os.fspath(path) == str(stuck):
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr("summary_airflow.retention.os.unlink", unlink)
    with caplog.at_level(logging.WARNING, logger="summary_airflow.retention"):
        assert prune_event_logs(folder, 14, NOW) == [gone]
    assert stuck.exists() and not gone.exists() and "could not prune" in caplog.text


def test_the_retention_keys_default_to_14_and_90_days_and_are_bounded():
    from spark_jobs.config import ConfigError, config_from_dict
    from tests.support import model_config

    cfg = config_from_dict(model_config("ns"))
    assert (cfg.airflow.spark_event_log_retention_days, cfg.airflow.report_retention_days) == (14, 90)
    raw = model_config("ns")
    raw["airflow"] = {**raw.get("airflow", {}), "spark_event_log_retention_days": 3, "report_retention_days": 365}
    cfg = config_from_dict(raw)
    assert (cfg.airflow.spark_event_log_retention_days, cfg.airflow.report_retention_days) == (3, 365)
    for key, bad in (("spark_event_log_retention_days", 0), ("report_retention_days", 3651), ("report_retention_days", "9")):
        raw["airflow"] = {key: bad}
        with pytest.raises(ConfigError, match=key):
            config_from_dict(raw)
