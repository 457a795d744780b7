"""The status API the plugin (plugins/summary_pipeline.py) mounts in Airflow's api-server.

    GET /summary-pipeline/status        every valid config's state (metadata.pipeline_status)
    GET /summary-pipeline/status/NAME   one config's
    GET /summary-pipeline/page          the pipeline page (HTML, every valid config; linked in the UI's Browse menu)
    GET /summary-pipeline/page/NAME     one config's section of it
    GET /summary-pipeline/page-data/NAME  the figures that section draws, as JSON (pipeline_page.page_data)

Read-only, from Iceberg metadata through PyIceberg and the stage run reports: the api-server never starts Spark.
Only authenticated users (a bearer token or the UI's session) may read it.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from spark_jobs.config import SummaryConfig
from summary_airflow import settings
from summary_airflow.loader import LoadedConfigs, load_all
from summary_airflow.metadata import pipeline_status
from summary_airflow.pipeline_page import page_data, render_page


def _authenticated() -> Callable[..., Any]:
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def create_app(configs_dir: Path | None = None, warehouse: str | None = None, require_login: bool = True) -> FastAPI:
    """The FastAPI app; ``require_login=False`` only for tests that run it outside the api-server."""
    app = FastAPI(title="Summary pipeline status", dependencies=[Depends(_authenticated())] if require_login else [])

    def loaded() -> LoadedConfigs:
        return load_all(configs_dir or settings.configs_dir())

    def configs() -> dict[str, SummaryConfig]:
        return {cfg.name: cfg for cfg in loaded().configs}

    def config(name: str) -> SummaryConfig:
        cfg = configs().get(name)
        if cfg is None:
            raise HTTPException(status_code=404, detail=f"no valid config named {name!r}")
        return cfg

    # response_model=None: FastAPI would otherwise turn the return annotations into response models.
    @app.get("/status", response_model=None)
    def all_status() -> list[dict[str, Any]]:
        return [pipeline_status(cfg, warehouse) for cfg in configs().values()]

    @app.get("/status/{name}", response_model=None)
    def one_status(name: str) -> dict[str, Any]:
        return pipeline_status(config(name), warehouse)

    # Links on the page are relative ("./page/NAME" from /page, "../page/NAME" from /page/NAME): the app works
    # under whatever prefix the api-server mounts it at.
    @app.get("/page", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        found = loaded()
        pages = [page_data(cfg, warehouse) for cfg in found.configs]
        return HTMLResponse(render_page(pages, [str(e) for e in found.errors], root="."))

    @app.get("/page/{name}", response_class=HTMLResponse)
    def one_page(name: str) -> HTMLResponse:
        return HTMLResponse(render_page([page_data(config(name), warehouse)], root=".."))

    @app.get("/page-data/{name}", response_model=None)
    def one_page_data(name: str) -> dict[str, Any]:
        return page_data(config(name), warehouse)

    return app
