"""The Airflow pools the DAGs use, as the JSON ``airflow pools import`` reads, and the listener that creates a
missing one.

    python -m summary_airflow.pools > pools.json && airflow pools import pools.json

Pools live in the metadata database, not in DAG files, so a deployment creates
them once (``bin/airflow`` and docker-compose's ``airflow-init`` do). A config
added to a running Airflow would have none, and its tasks would wait in
``scheduled`` without a word: ``PoolKeeper`` (registered by the plugin, run by
the scheduler) creates it when the config's first DAG run starts.
"""

import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

from spark_jobs.config_set import load_all
from summary_airflow import settings

log = logging.getLogger(__name__)
WRITERS_POOL_SLOTS = 1


def pools(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """One single-slot pool per valid config: no two stages write the same tables at once."""
    return {
        settings.pool_name(cfg.name): {"slots": WRITERS_POOL_SLOTS, "description": description(cfg.name)}
        for cfg in load_all(folder or settings.configs_dir()).configs
    }


def description(config_name: str) -> str:
    return f"summary pipeline writers of config {config_name}: one stage at a time"


def create_missing_pools(names: Iterable[str]) -> list[str]:
    """Create each of ``names`` that is one of the pipeline's pools and does not exist (one slot); return those made.

    An existing pool is left as its owner set it, with a warning when it no longer keeps writers one at a time."""
    from airflow.models.pool import Pool

    created = []
    for name in sorted(set(names)):
        if not (name.startswith("summary_") and name.endswith("_writers")):
            continue  # not ours: left to whoever runs that DAG
        pool = Pool.get_pool(name)
        if pool is None:
            config_name = name[len("summary_") : -len("_writers")]
            Pool.create_or_update_pool(name, WRITERS_POOL_SLOTS, description(config_name), False)
            log.warning("created the missing pool %s (1 slot): its tasks would have waited in scheduled", name)
            created.append(name)
        elif pool.slots != WRITERS_POOL_SLOTS:
            log.warning("pool %s has %s slots: two stages may wait for each other's run lock, not the pool", name, pool.slots)
    return created


class PoolKeeper:
    """An Airflow listener: when a DAG run starts, the pipeline's pools its tasks use exist (in the scheduler).

    Called inside the scheduler's transaction, on its thread: the pools are read from the run's DAG (no query),
    and made on a thread of their own, whose session is not the scheduler's (committing that one mid-loop would
    detach the scheduler's objects) and which waits for the scheduler's commit on SQLite instead of blocking it.
    """

    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        try:
            dag = getattr(dag_run, "dag", None)  # the scheduler sets it (not a database column: no query)
            names = sorted({task.pool for task in dag.tasks}) if dag is not None else []
        except Exception:  # a listener must never break the scheduler's loop
            log.warning("could not read the pools of a DAG run", exc_info=True)
            return
        if any(name.startswith("summary_") and name.endswith("_writers") for name in names):
            threading.Thread(target=self._create, args=(names,), name="summary-pool-keeper", daemon=True).start()

    @staticmethod
    def _create(names: list[str]) -> None:
        try:
            create_missing_pools(names)
        except Exception:
            log.warning("could not create the pools %s", names, exc_info=True)


pool_keeper = PoolKeeper()


if __name__ == "__main__":
    print(json.dumps(pools(), indent=1))
