"""The status API the plugin (plugins/summary_pipeline.py) mounts in Airflow's api-server.

    GET /summary-pipeline/status        the state of every config the user may read (metadata.pipeline_status)
    GET /summary-pipeline/status/NAME   one config's
    GET /summary-pipeline/page          the pipeline page (HTML; linked in the UI's Browse menu)
    GET /summary-pipeline/page/NAME     one config's section of it
    GET /summary-pipeline/page-data/NAME  the figures that section draws, as JSON (pipeline_page.page_data)

Read-only, from Iceberg metadata through PyIceberg and the stage run reports: the api-server never starts Spark.
A user must be logged in (a bearer token or the UI's session) and sees a config only with read access to the
runs of every one of its DAGs (``access.py``). Catalog reads run on this app's own few threads, each under a
deadline, and are kept for a short while: a hung catalog costs a note on the page, not the api-server's shared
thread pool (which also answers the workers' heartbeats). Page figures are kept a short while; status is read
afresh on every request.
"""

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse

from spark_jobs.config import SummaryConfig
from spark_jobs.config_set import LoadedConfigs, load_all
from spark_jobs.names import PAGE_CACHE_ENV, PAGE_TIMEOUT_ENV
from summary_airflow import settings
from summary_airflow.access import Reader, TeamLookup, teams_from_airflow
from summary_airflow.metadata import pipeline_status
from summary_airflow.metrics import prometheus_text
from summary_airflow.pipeline_page import empty_page, page_data, render_page
from summary_airflow.settings import seconds_from_env

READ_THREADS = 4  # at most this many configs are read at once, whatever the number of requests

T = TypeVar("T")


class ReadTimeout(Exception):
    pass


class BoundedReads:
    """Reads on ``threads`` threads of their own, each under ``timeout`` seconds, results kept ``ttl`` seconds."""

    def __init__(self, threads: int, timeout: float, ttl: float) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="summary-pipeline-page")
        self.timeout, self.ttl = timeout, ttl
        self._kept: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    async def get(self, key: tuple[str, ...], read: Callable[[], T], keep: bool = True) -> T:
        """``read()``'s value; ``keep=False``: always read afresh, and keep nothing."""
        with self._lock:
            kept = self._kept.get(key) if keep else None
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        future = self.pool.submit(read)
        try:
            value = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except asyncio.TimeoutError:
            future.cancel()  # a read still queued never starts; a running one ends at the catalog's own timeout
            raise ReadTimeout(f"not read within {self.timeout:g} s (${PAGE_TIMEOUT_ENV})") from None
        if self.ttl and keep:
            with self._lock:
                self._kept[key] = (time.monotonic() + self.ttl, value)
        return value


def _reader_dependency(teams: TeamLookup) -> Callable[..., Reader]:
    """A FastAPI dependency: the request's user (401 without a valid login) and the auth manager that judges them."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import GetUserDep

    def reader(user: GetUserDep) -> Reader:
        return Reader(get_auth_manager(), user, teams)

    return reader


def create_app(
    configs_dir: Path | None = None,
    warehouse: str | None = None,
    require_login: bool = True,
    dag_teams: TeamLookup = teams_from_airflow,
) -> FastAPI:
    """The FastAPI app; ``require_login=False`` only for tests that run it outside the api-server.

    ``dag_teams``: which team owns each DAG (multi-team deployments; Airflow's metadata DB by default).
    """
    # No /docs, /redoc or /openapi.json: FastAPI serves those outside the app's dependencies, so without login.
    app = FastAPI(title="Summary pipeline status", docs_url=None, redoc_url=None, openapi_url=None)
    reads = BoundedReads(
        READ_THREADS,
        seconds_from_env(PAGE_TIMEOUT_ENV, 20.0, most=3600),
        seconds_from_env(PAGE_CACHE_ENV, 30.0, most=3600, zero_allowed=True),
    )
    reader_of = _reader_dependency(dag_teams) if require_login else lambda: Reader()
    ReaderDep = Annotated[Reader, Depends(reader_of)]  # noqa: N806  # FastAPI's idiom for a dependency type

    async def loaded() -> LoadedConfigs:
        return await reads.get(("configs",), lambda: load_all(configs_dir or settings.configs_dir()))

    async def readable(reader: Reader) -> list[SummaryConfig]:
        return reader.readable((await loaded()).configs)

    async def config(name: str, reader: Reader) -> SummaryConfig:
        cfg = next((c for c in await readable(reader) if c.name == name), None)
        if cfg is None:  # unknown and not readable look the same: a config's existence is not disclosed
            raise HTTPException(status_code=404, detail=f"no valid config named {name!r} that you may read")
        return cfg

    async def status_of(cfg: SummaryConfig) -> dict[str, Any]:
        # never kept: monitors poll /status to see a delivery arrive or a run's effect, which must not lag
        return await reads.get(("status", cfg.name), lambda: pipeline_status(cfg, warehouse), keep=False)

    async def page_of(cfg: SummaryConfig) -> dict[str, Any]:
        try:
            return await reads.get(("page", cfg.name), lambda: page_data(cfg, warehouse))
        except ReadTimeout as exc:
            return empty_page(cfg, f"{cfg.name}: the catalog or the reports folder was {exc}")
        except Exception as exc:  # one config's failure is its section's note, never the page's 500
            return empty_page(cfg, f"{cfg.name}: could not be read: {type(exc).__name__}: {exc}")

    # response_model=None: FastAPI would otherwise turn the return annotations into response models.
    @app.get("/status", response_model=None)
    async def all_status(reader: ReaderDep) -> list[dict[str, Any]]:
        async def one(cfg: SummaryConfig) -> dict[str, Any]:
            try:
                return await status_of(cfg)
            except Exception as exc:  # one config's failure is its entry, never the list's 500
                return {"name": cfg.name, "error": f"{type(exc).__name__}: {exc}"}

        return list(await asyncio.gather(*(one(cfg) for cfg in await readable(reader))))

    @app.get("/status/{name}", response_model=None)
    async def one_status(name: str, reader: ReaderDep) -> dict[str, Any]:
        cfg = await config(name, reader)
        try:
            return await status_of(cfg)
        except ReadTimeout as exc:
            raise HTTPException(status_code=504, detail=f"{name}: the catalog was {exc}") from None
        except Exception as exc:  # the catalog answered with an error, or its own timeout struck
            raise HTTPException(status_code=502, detail=f"{name}: could not be read: {type(exc).__name__}: {exc}") from None

    # Links on the page are relative ("./page/NAME" from /page, "../page/NAME" from /page/NAME): the app works
    # under whatever prefix the api-server mounts it at.
    @app.get("/page", response_class=HTMLResponse)
    async def page(reader: ReaderDep) -> HTMLResponse:
        found = await loaded()
        pages = await asyncio.gather(*(page_of(cfg) for cfg in reader.readable(found.configs)))
        errors = [str(e) for e in found.errors] if reader.may_see_config_errors() else []
        return HTMLResponse(render_page(pages, errors, root="."))

    @app.get("/page/{name}", response_class=HTMLResponse)
    async def one_page(name: str, reader: ReaderDep) -> HTMLResponse:
        return HTMLResponse(render_page([await page_of(await config(name, reader))], root=".."))

    @app.get("/page-data/{name}", response_model=None)
    async def one_page_data(name: str, reader: ReaderDep) -> dict[str, Any]:
        return await page_of(await config(name, reader))

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(reader: ReaderDep) -> PlainTextResponse:
        """Prometheus' text format (version 0.0.4) of every config the reader may see; send the token as for /status."""

        async def one(cfg: SummaryConfig) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
            try:
                status: dict[str, Any] | None = await status_of(cfg)
            except Exception:  # the catalog failed: summary_pipeline_up 0, the other configs still reported
                status = None
            return cfg.name, status, (await page_of(cfg)) if status is not None else None

        entries = await asyncio.gather(*(one(cfg) for cfg in await readable(reader)))
        return PlainTextResponse(prometheus_text(entries), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
