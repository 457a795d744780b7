"""The config's ``airflow.alerts`` as Airflow notifiers: who hears about a failed task and a late monthly run.

A task that fails for good (after its retries) calls every notifier of its DAG on
the worker; a forward run still going at its deadline calls ``deadline_missed`` in
the triggerer (Airflow's deadline alerts). Both send the same JSON message, so one
receiver handles both.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from spark_jobs.config import AlertSettings, SummaryConfig

USER_AGENT = "summary-pipeline-alerts"


class AlertDeliveryError(RuntimeError):
    pass


def _text(value: Any) -> Any:
    """JSON-safe: dates as ISO text, anything else exotic as its str()."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def failure_message(config_name: str, context: Any) -> dict[str, Any]:
    """What a receiver needs to act on a failed task: where it failed, why, and where its log is."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    return {
        "event": "task_failed",
        "config": config_name,
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": _text(context.get("logical_date")),
        "error": f"{type(exception).__name__}: {exception}" if exception else None,
        "log_url": getattr(ti, "log_url", None),
    }


def resolve_webhook_url(alerts: AlertSettings) -> str:
    if alerts.webhook_url:
        return alerts.webhook_url
    url = os.environ.get(alerts.webhook_url_env or "")
    if not url:
        raise AlertDeliveryError(f"airflow.alerts.webhook.url_env: environment variable {alerts.webhook_url_env} is not set")
    return url


def post_json(url: str, message: dict[str, Any], timeout_seconds: float) -> int:
    """POST the message; the receiver's status code, or AlertDeliveryError for anything but 2xx."""
    request = urllib.request.Request(
        url,
        data=json.dumps(message).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310  # http(s) only (schema)
            return int(response.status)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise AlertDeliveryError(f"webhook alert to {url.split('?')[0]} failed: {exc}") from exc


class WebhookNotifier(BaseNotifier):
    """Posts a JSON message about a failed task to the config's webhook (Slack-style receivers take JSON too)."""

    def __init__(self, config_name: str, alerts: AlertSettings) -> None:
        super().__init__()
        self.config_name = config_name
        self.alerts = alerts

    def notify(self, context: Any) -> None:
        message = failure_message(self.config_name, context)
        post_json(resolve_webhook_url(self.alerts), message, self.alerts.webhook_timeout_seconds)

    async def async_notify(self, context: Any) -> None:
        await asyncio.to_thread(self.notify, context)


def _email_notifier(cfg: SummaryConfig) -> BaseNotifier:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    alerts = cfg.airflow.alerts
    return SmtpNotifier(
        to=list(alerts.email_to),
        from_email=alerts.from_email,
        smtp_conn_id=alerts.smtp_conn_id or "smtp_default",
        subject=f"[summary-pipeline {cfg.name}] {{{{ ti.dag_id }}}}.{{{{ ti.task_id }}}} failed",
        html_content=(
            "<p>Task <b>{{ ti.task_id }}</b> of <b>{{ ti.dag_id }}</b> (run {{ run_id }}) failed after "
            "{{ ti.try_number }} tries.</p><p>{{ exception }}</p><p><a href='{{ ti.log_url }}'>Log</a></p>"
        ),
    )


def failure_notifiers(cfg: SummaryConfig) -> list[BaseNotifier]:
    """The notifiers every task of the config's DAGs calls when it fails for good."""
    alerts = cfg.airflow.alerts
    notifiers: list[BaseNotifier] = []
    if alerts.has_webhook:
        notifiers.append(WebhookNotifier(cfg.name, alerts))
    if alerts.email_to:
        notifiers.append(_email_notifier(cfg))
    return notifiers


def forward_deadline(cfg: SummaryConfig) -> DeadlineAlert | None:
    """Month M's forward run must be done by the end of day N of month M+1: N days after the run is queued.

    A scheduled run is queued when its month ends (day 1, 00:00 UTC), so the deadline is the end of day N; a
    catch-up run queued later gets the same N days from then.
    """
    day = cfg.airflow.alerts.forward_deadline_day
    if day is None:
        return None
    alerts = cfg.airflow.alerts
    kwargs = {
        "config_name": cfg.name,
        "deadline_day": day,
        "webhook_url": alerts.webhook_url,
        "webhook_url_env": alerts.webhook_url_env,
        "timeout_seconds": alerts.webhook_timeout_seconds,
        "email_to": list(alerts.email_to),
        "smtp_conn_id": alerts.smtp_conn_id,
        "from_email": alerts.from_email,
    }
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(days=day),
        callback=AsyncCallback(deadline_missed, kwargs=kwargs),
        name=f"{cfg.name}_forward_done_by_day_{day}",
    )


def deadline_message(config_name: str, deadline_day: int, context: Any) -> dict[str, Any]:
    dag_run = (context or {}).get("dag_run") or {}
    get = dag_run.get if isinstance(dag_run, dict) else lambda k: getattr(dag_run, k, None)
    return {
        "event": "deadline_missed",
        "config": config_name,
        "dag_id": get("dag_id"),
        "run_id": get("dag_run_id") or get("run_id"),  # Airflow passes the run as its API model: dag_run_id
        "logical_date": _text(get("logical_date")),
        "deadline": f"the forward run must be done by the end of day {deadline_day} after its month",
    }


async def deadline_missed(
    context: Any = None,
    *,
    config_name: str,
    deadline_day: int,
    webhook_url: str | None = None,
    webhook_url_env: str | None = None,
    timeout_seconds: int = 10,
    email_to: list[str] | None = None,
    smtp_conn_id: str | None = None,
    from_email: str | None = None,
) -> None:
    """Airflow calls this (in the triggerer) when a forward run passes its deadline."""
    message = deadline_message(config_name, deadline_day, context)
    alerts = AlertSettings(webhook_url=webhook_url, webhook_url_env=webhook_url_env, webhook_timeout_seconds=timeout_seconds)
    if alerts.has_webhook:
        await asyncio.to_thread(post_json, resolve_webhook_url(alerts), message, timeout_seconds)
    if email_to:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        def send() -> None:
            with SmtpHook(smtp_conn_id=smtp_conn_id or "smtp_default") as smtp:
                smtp.send_email_smtp(
                    to=email_to,
                    from_email=from_email,
                    subject=f"[summary-pipeline {config_name}] forward run late: {message['run_id']}",
                    html_content=f"<p>{message['deadline']}: run {message['run_id']} of {message['dag_id']} is not done.</p>",
                )

        await asyncio.to_thread(send)
