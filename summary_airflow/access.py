"""Who may read a config's page and status: exactly the users Airflow lets read the runs of every one of its DAGs.

The plugin's routes are mounted in the api-server without any of Airflow's own
authorization, so they ask the deployment's auth manager themselves, the way
Airflow's routes do (``is_authorized_dag`` with the DAG's team): a user limited to
other teams' DAGs sees neither this config's figures nor that it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spark_jobs.config import SummaryConfig
from summary_airflow import settings

DAG_KINDS = ("forward", "backfill", "maintenance", "ingest")  # the DAGs the factory builds per config

# dag id -> its team (None: no team); Airflow's DagModel answers this from the metadata DB.
TeamLookup = Callable[[list[str]], dict[str, "str | None"]]


def config_dag_ids(cfg: SummaryConfig) -> list[str]:
    return [settings.dag_id(cfg.name, kind) for kind in DAG_KINDS]


def teams_from_airflow(dag_ids: list[str]) -> dict[str, str | None]:
    """The teams of ``dag_ids`` (multi-team deployments only: without it no DAG has a team)."""
    from airflow.configuration import conf

    if not conf.getboolean("core", "multi_team", fallback=False):
        return {}
    from airflow.models.dag import DagModel

    return dict(DagModel.get_dag_id_to_team_name_mapping(dag_ids))


@dataclass(frozen=True)
class Reader:
    """One request's user, as the auth manager judges them; ``auth_manager=None`` lets everything through (tests
    that run the app outside the api-server, ``create_app(require_login=False)``)."""

    auth_manager: Any = None
    user: Any = None
    teams: TeamLookup = teams_from_airflow

    def may_read(self, cfg: SummaryConfig) -> bool:
        if self.auth_manager is None:
            return True
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        dag_ids = config_dag_ids(cfg)
        team_of = self.teams(dag_ids)
        return all(
            self.auth_manager.is_authorized_dag(
                method="GET",
                access_entity=DagAccessEntity.RUN,
                details=DagDetails(id=dag_id, team_name=team_of.get(dag_id)),
                user=self.user,
            )
            for dag_id in dag_ids
        )

    def readable(self, configs: Sequence[SummaryConfig]) -> list[SummaryConfig]:
        return [cfg for cfg in configs if self.may_read(cfg)]

    def may_see_config_errors(self) -> bool:
        """Invalid configs belong to no DAG: they are listed to those who may see Airflow's import errors."""
        if self.auth_manager is None:
            return True
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView

        return bool(self.auth_manager.is_authorized_view(access_view=AccessView.IMPORT_ERRORS, user=self.user))
