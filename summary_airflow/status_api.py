"""The status API the plugin (plugins/summary_pipeline.py) mounts in Airflow's api-server.

    GET /summary-pipeline/status        every valid config's state (metadata.pipeline_status)
    GET /summary-pipeline/status/NAME   one config's

Read-only, from Iceberg metadata through PyIceberg: the api-server never starts Spark.
Only authenticated users (a bearer token or the UI's session) may read it.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException

from spark_jobs.config import SummaryConfig
from summary_airflow import settings
from summary_airflow.loader import load_all
from summary_airflow.metadata import pipeline_status


def _authenticated() -> Callable[..., Any]:
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def create_app(configs_dir: Path | None = None, warehouse: str | None = None, require_login: bool = True) -> FastAPI:
    """The FastAPI app; ``require_login=False`` only for tests that run it outside the api-server."""
    app = FastAPI(title="Summary pipeline status", dependencies=[Depends(_authenticated())] if require_login else [])

    def configs() -> dict[str, SummaryConfig]:
        return {cfg.name: cfg for cfg in load_all(configs_dir or settings.configs_dir()).configs}

    # response_model=None: FastAPI would otherwise turn the return annotations into response models.
    @app.get("/status", response_model=None)
    def all_status() -> list[dict[str, Any]]:
        return [pipeline_status(cfg, warehouse) for cfg in configs().values()]

    @app.get("/status/{name}", response_model=None)
    def one_status(name: str) -> dict[str, Any]:
        cfg = configs().get(name)
        if cfg is None:
            raise HTTPException(status_code=404, detail=f"no valid config named {name!r}")
        return pipeline_status(cfg, warehouse)

    return app
