"""The Airflow pools the DAGs use, as the JSON ``airflow pools import`` reads.

    python -m summary_airflow.pools > pools.json && airflow pools import pools.json

Pools live in the metadata database, not in DAG files, so a deployment creates
them once (``bin/airflow`` and docker-compose's ``airflow-init`` do).
"""

import json
from pathlib import Path
from typing import Any

from spark_jobs.config_set import load_all
from summary_airflow import settings


def pools(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """One single-slot pool per valid config: no two stages write the same tables at once."""
    return {
        settings.pool_name(cfg.name): {"slots": 1, "description": f"summary pipeline writers of {cfg.summary_table}"}
        for cfg in load_all(folder or settings.configs_dir()).configs
    }


if __name__ == "__main__":
    print(json.dumps(pools(), indent=1))
