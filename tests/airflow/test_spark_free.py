"""Parsing the DAG folder, loading the plugin and running the trigger must not import pyspark.

The dag-processor parses every few seconds, the triggerer runs many triggers in
one event loop and the api-server loads the plugin: none of them may pay for a
Spark import, and a deployment may not even install Spark beside them. Each
check runs in a fresh interpreter whose import system refuses ``pyspark``.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli_support import write_config

pytestmark = pytest.mark.airflow
ROOT = Path(__file__).resolve().parents[2]

BLOCK_PYSPARK = textwrap.dedent(
    """
    import importlib.abc, sys

    class RefusePyspark(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pyspark" or name.startswith("pyspark."):
                raise ImportError(f"pyspark is blocked in this test: {name}")

    sys.meta_path.insert(0, RefusePyspark())
    """
)


def run_without_pyspark(tmp_path, body, env=None):
    """Run ``body`` after BLOCK_PYSPARK in a fresh interpreter (in tmp_path); return its last stdout line as JSON."""
    script = tmp_path / "check.py"
    script.write_text(BLOCK_PYSPARK + textwrap.dedent(body))
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_blocker_really_refuses_pyspark(tmp_path):
    found = run_without_pyspark(
        tmp_path,
        """
        import json
        try:
            import pyspark.sql
            print(json.dumps("imported"))
        except ImportError as exc:
            print(json.dumps(str(exc)))
        """,
    )
    assert found.startswith("pyspark is blocked")


def test_parsing_the_dag_folder_and_loading_the_plugin_import_no_spark(tmp_path):
    home = tmp_path / "airflow_home"
    found = run_without_pyspark(
        tmp_path,
        f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(ROOT / "dags")!r})
        from airflow import plugins_manager
        plugins, plugin_errors = plugins_manager._get_plugins()
        print(json.dumps({{
            "dags": sorted(bag.dag_ids), "import_errors": bag.import_errors,
            "plugins": [p.name for p in plugins], "plugin_errors": plugin_errors,
            "pyspark": sorted(m for m in sys.modules if m.startswith("pyspark")),
        }}))
        """,
        env={
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        },
    )
    assert found["import_errors"] == {} and found["plugin_errors"] == {}, found
    assert {"summary_forward", "summary_backfill", "summary_maintenance"} <= set(found["dags"])
    assert found["plugins"] == ["summary_pipeline"], "only the plugin module is loaded from plugins/, not the factory's modules"
    assert found["pyspark"] == []


def test_the_trigger_loads_and_fires_from_its_classpath_without_spark(tmp_path):
    """What the triggerer does: import the serialized classpath, run the trigger against a real Iceberg catalog."""
    warehouse = tmp_path / "warehouse"
    config = write_config(tmp_path, "spark_free")  # its name is the file's stem, spark_free
    found = run_without_pyspark(
        tmp_path,
        f"""
        import asyncio, importlib, json, sys
        import pyarrow as pa
        from pyiceberg.catalog import load_catalog
        from summary_airflow.source_watch import NewSourceRecordsTrigger

        classpath, kwargs = NewSourceRecordsTrigger({str(config)!r}, poke_seconds=1, warehouse={str(warehouse)!r}).serialize()
        module, _, name = classpath.rpartition(".")
        trigger = getattr(importlib.import_module(module), name)(**kwargs)

        async def first_event(seconds):
            try:
                return await asyncio.wait_for(anext(trigger.run()), seconds)
            except asyncio.TimeoutError:
                return None

        before = asyncio.run(first_event(3))  # no warehouse yet: nothing to apply, keeps waiting
        import pathlib
        pathlib.Path({str(warehouse)!r}).mkdir()
        catalog = load_catalog("local", type="sql", uri="sqlite:///{warehouse}/iceberg_catalog.sqlite",
                               warehouse="file://{warehouse}/local")
        catalog.create_namespace("spark_free")
        table = catalog.create_table("spark_free.accounts", pa.schema([("acct_id", pa.int64())]))
        table.append(pa.table({{"acct_id": [1]}}))
        after = asyncio.run(first_event(10))
        print(json.dumps({{
            "before": before and before.payload, "after": after and after.payload,
            "snapshot": table.current_snapshot().snapshot_id,
            "pyspark": sorted(m for m in sys.modules if m.startswith("pyspark")),
        }}))
        """,
    )
    assert found["before"] is None
    assert found["after"] == {"source_snapshot": found["snapshot"]}
    assert found["pyspark"] == []


def test_the_source_watcher_announces_each_unapplied_snapshot_once_and_outlives_a_catalog_outage(tmp_path):
    """The Asset watcher as the triggerer runs it: from its classpath, against a real catalog, for several polls."""
    warehouse = tmp_path / "warehouse"
    config = write_config(tmp_path, "watched")  # its name is the file's stem, watched
    found = run_without_pyspark(
        tmp_path,
        f"""
        import asyncio, importlib, json, logging, os, pathlib
        import pyarrow as pa
        from pyiceberg.catalog import load_catalog
        from spark_jobs.catalogs import split_identifier
        from spark_jobs.config import load_config
        from spark_jobs.names import BACKFILL_MARK
        from summary_airflow.source_watch import SourceSnapshotWatcher

        os.environ["SUMMARY_WAREHOUSE"] = {str(warehouse)!r}
        outage_logs = []
        handler = logging.Handler()
        handler.emit = lambda record: outage_logs.append(record.getMessage())
        logging.getLogger("summary_airflow.source_watch").addHandler(handler)
        classpath, kwargs = SourceSnapshotWatcher({str(config)!r}, poke_seconds=0.2).serialize()
        module, _, name = classpath.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        cfg = load_config({str(config)!r})
        pathlib.Path({str(warehouse)!r}).mkdir()
        catalog = load_catalog("local", type="sql", uri="sqlite:///{warehouse}/iceberg_catalog.sqlite",
                               warehouse="file://{warehouse}/local")
        catalog.create_namespace("watched")
        source = catalog.create_table(split_identifier(cfg.source_table, "local")[1], pa.schema([("acct_id", pa.int64())]))

        async def watch(actions):
            # Run one watcher across the actions (each after a few polls); return the snapshots it announced.
            events, trigger = [], cls(**kwargs)
            async def collect():
                async for event in trigger.run():
                    events.append(event.payload["source_snapshot"])
            task = asyncio.create_task(collect())
            for action in actions:
                await asyncio.sleep(1.5)
                await asyncio.to_thread(action)
            await asyncio.sleep(1.5)
            task.cancel()
            return events

        append = lambda: source.append(pa.table({{"acct_id": [1]}}))
        snapshots = []
        def remember():
            source.refresh()
            snapshots.append(source.current_snapshot().snapshot_id)
        def apply_current():  # what a finished backfill leaves: the mark on the control table
            source.refresh()
            catalog.create_table(split_identifier(cfg.control_table, "local")[1], pa.schema([("k", pa.string())]),
                                 properties={{BACKFILL_MARK: str(source.current_snapshot().snapshot_id)}})
        def catalog_down():
            os.environ["SUMMARY_CATALOGS"] = json.dumps({{"local": {{"type": "rest", "uri": "http://127.0.0.1:9"}}}})
        def catalog_up():
            del os.environ["SUMMARY_CATALOGS"]

        # nothing yet; a write; the same snapshot for several polls; a second write; a catalog outage across a third
        first = asyncio.run(watch([append, remember, append, remember, catalog_down, append, remember, catalog_up]))
        apply_current()
        restarted = asyncio.run(watch([]))  # a restarted watcher: the current snapshot is applied, nothing to announce
        print(json.dumps({{"first": first, "snapshots": snapshots, "restarted": restarted, "outage": outage_logs}}))
        """,
        env={"SUMMARY_CATALOG_TIMEOUT_SECONDS": "1"},
    )
    assert found["first"] == found["snapshots"], found  # each new snapshot once, the third after the outage
    assert len(set(found["snapshots"])) == 3
    assert found["restarted"] == []
    assert found["outage"] and all(m.startswith("cannot read the source snapshots of ") for m in found["outage"]), found
