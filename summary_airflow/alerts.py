"""The config's ``airflow.alerts`` as Airflow notifiers: who hears about a failed task and a late monthly run.

A task that fails for good (after its retries) calls every notifier of its DAG on
the worker; a forward run still going at its deadline calls ``deadline_missed`` in
the triggerer (Airflow's deadline alerts). Both send the same JSON message, so one
receiver handles both.

What leaves for a receiver is only where it failed (config, DAG, task and run ids, the
exception's type) and the log link: the exception's text can hold record data (a quality
gate's examples, a file's column names), so it stays in the task log. A delivery error
names the receiver by scheme://host[:port] only (a webhook's token is often in its path).
Each delivery has a wall-clock deadline (the timeout) and follows no redirect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from spark_jobs.config import AlertSettings, SummaryConfig, load_config, url_env_problem

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
        "error_type": type(exception).__name__ if exception else None,  # its text stays in the task log (record data)
        "log_url": getattr(ti, "log_url", None),
    }


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what an error may say about it (no userinfo, path or query)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<the webhook URL>"
    if not parts.scheme or not host:
        return "<the webhook URL>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def check_webhook_url(url: str, where: str) -> str:
    """The URL if it is http(s) with a host; else an error that does not repeat the value (it may be a secret)."""
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  # a bad port raises ValueError
    except ValueError:
        ok = False
    if not ok or any(c.isspace() for c in url):
        raise AlertDeliveryError(f"{where}: the value is not an http:// or https:// URL with a host (it is not shown)")
    return url


def resolve_webhook_url(alerts: AlertSettings) -> str:
    if alerts.webhook_url:
        return check_webhook_url(alerts.webhook_url, "airflow.alerts.webhook.url")
    name = alerts.webhook_url_env or ""
    if problem := url_env_problem(name):  # the config check refuses it too; this guards any other way in
        raise AlertDeliveryError(f"airflow.alerts.webhook.url_env: {problem}")
    url = os.environ.get(name)
    if not url:
        raise AlertDeliveryError(f"airflow.alerts.webhook.url_env: environment variable {name} is not set")
    return check_webhook_url(url, f"airflow.alerts.webhook.url_env: environment variable {name}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is the receiver's answer, not an address to go on to: urllib then raises it as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _why(exc: BaseException) -> str:
    """What went wrong, without any text that could repeat the URL."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP Error {exc.code}" + (" (redirects are not followed)" if 300 <= exc.code < 400 else "")
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def post_json(url: str, message: dict[str, Any], timeout_seconds: float) -> int:
    """POST the message; the receiver's status code, or AlertDeliveryError for anything but 2xx.

    ``timeout_seconds`` bounds the whole delivery (connect, DNS, a receiver trickling its answer): the POST
    runs in a daemon thread that is abandoned at the deadline. Redirects are not followed.
    """
    where = origin(url)
    outcome: dict[str, Any] = {}

    def deliver() -> None:
        try:
            request = urllib.request.Request(
                url,
                data=json.dumps(message).encode("utf-8"),
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
                method="POST",
            )
            opener = urllib.request.build_opener(_NoRedirect)
            with opener.open(request, timeout=timeout_seconds) as response:  # http(s) only (checked)
                outcome["status"] = int(response.status)
        except BaseException as exc:  # noqa: BLE001  # reported by the caller, never with its text
            outcome["error"] = exc

    thread = threading.Thread(target=deliver, name="summary-webhook-alert", daemon=True)
    thread.start()
    thread.join(timeout_seconds)
    if thread.is_alive():
        raise AlertDeliveryError(f"webhook alert to {where} failed: no complete answer within {timeout_seconds} s")
    if "error" in outcome:
        raise AlertDeliveryError(f"webhook alert to {where} failed: {_why(outcome['error'])}") from None
    return int(outcome["status"])


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
            "{{ ti.try_number }} tries.</p><p>{{ exception | string | truncate(300) | e }}</p>"
            "<p><a href='{{ ti.log_url | e }}'>Log</a></p>"
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
    # The kwargs are serialized into Airflow's metadata DB: no URL, only where the triggerer reads the settings.
    kwargs = {"config_name": cfg.name, "deadline_day": day, "config_path": cfg.path}
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


def _deadline_alerts(config_path: str | None, config_name: str) -> AlertSettings:
    """The alert settings of the config as it is now (read in the triggerer); the URL never travels in the kwargs."""
    if not config_path:
        raise AlertDeliveryError(
            f"deadline alert of {config_name}: no config path (a DAG parsed by an older version; re-parse it)"
        )
    cfg = load_config(config_path)
    if cfg.name != config_name:
        raise AlertDeliveryError(f"deadline alert of {config_name}: {config_path} now holds config {cfg.name!r}")
    return cfg.airflow.alerts


async def deadline_missed(
    context: Any = None,
    *,
    config_name: str,
    deadline_day: int,
    config_path: str | None = None,
    **_older_kwargs: Any,  # a DAG serialized by an older version passed its settings (and URL) here; they are ignored
) -> None:
    """Airflow calls this (in the triggerer) when a forward run passes its deadline."""
    message = deadline_message(config_name, deadline_day, context)
    alerts = await asyncio.to_thread(_deadline_alerts, config_path, config_name)
    if alerts.has_webhook:
        await asyncio.to_thread(post_json, resolve_webhook_url(alerts), message, alerts.webhook_timeout_seconds)
    if alerts.email_to:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        def send() -> None:
            with SmtpHook(smtp_conn_id=alerts.smtp_conn_id or "smtp_default") as smtp:
                smtp.send_email_smtp(
                    to=list(alerts.email_to),
                    from_email=alerts.from_email,
                    subject=f"[summary-pipeline {config_name}] forward run late: {message['run_id']}",
                    html_content=(
                        f"<p>{message['deadline']}: run {html.escape(str(message['run_id']))} of "
                        f"{html.escape(str(message['dag_id']))} is not done.</p>"
                    ),
                )

        await asyncio.to_thread(send)
