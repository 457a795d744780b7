"""The status API the plugin (plugins/summary_pipeline.py) mounts in Airflow's api-server.

    GET /summary-pipeline/status        every valid config's state (metadata.pipeline_status)
    GET /summary-pipeline/status/NAME   one config's

Read-only, from Iceberg metadata through PyIceberg: the api-server never starts Spark.
Only authenticated users (a bearer token or the UI's session) may read it.
"""

from fastapi import Depends, FastAPI, HTTPException

from summary_airflow import settings
from summary_airflow.loader import load_all
from summary_airflow.metadata import pipeline_status


def _authenticated():
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def create_app(configs_dir=None, warehouse=None, require_login=True):
    """The FastAPI app; ``require_login=False`` only for tests that run it outside the api-server."""
    app = FastAPI(title="Summary pipeline status", dependencies=[Depends(_authenticated())] if require_login else [])

    def configs():
        return {cfg.name: cfg for cfg in load_all(configs_dir or settings.configs_dir()).configs}

    @app.get("/status")
    def all_status():
        return [pipeline_status(cfg, warehouse) for cfg in configs().values()]

    @app.get("/status/{name}")
    def one_status(name: str):
        cfg = configs().get(name)
        if cfg is None:
            raise HTTPException(status_code=404, detail=f"no valid config named {name!r}")
        return pipeline_status(cfg, warehouse)

    return app
