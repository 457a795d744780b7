"""Alerts reach a real HTTP receiver on loopback: a failed task's message, a missed deadline's, and clear errors."""

import asyncio
from types import SimpleNamespace

import pytest

from spark_jobs.config import AlertSettings
from summary_airflow.alerts import AlertDeliveryError, WebhookNotifier, deadline_missed
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.airflow


@pytest.fixture
def receiver():
    with WebhookReceiver() as hook:
        yield hook.url, hook.received


def failed_task_context():
    ti = SimpleNamespace(dag_id="cards_forward", task_id="forward_month", run_id="scheduled__2024-08-01", try_number=3,
                         log_url="http://airflow.example/log")  # fmt: skip
    return {"ti": ti, "exception": RuntimeError("stage forward failed with exit code 2"), "logical_date": None}


def test_a_failed_task_posts_where_and_why_to_the_webhook(receiver):
    url, received = receiver
    WebhookNotifier("cards", AlertSettings(webhook_url=f"{url}/hook")).notify(failed_task_context())
    assert len(received) == 1 and received[0]["path"] == "/hook" and received[0]["type"] == "application/json"
    message = received[0]["body"]
    assert message["event"] == "task_failed" and message["config"] == "cards"
    assert (message["dag_id"], message["task_id"], message["try_number"]) == ("cards_forward", "forward_month", 3)
    assert message["error"] == "RuntimeError: stage forward failed with exit code 2"


def test_the_webhook_url_may_come_from_the_environment(receiver, monkeypatch):
    url, received = receiver
    alerts = AlertSettings(webhook_url_env="CARDS_ALERT_WEBHOOK")
    with pytest.raises(AlertDeliveryError, match="environment variable CARDS_ALERT_WEBHOOK is not set"):
        WebhookNotifier("cards", alerts).notify(failed_task_context())
    monkeypatch.setenv("CARDS_ALERT_WEBHOOK", f"{url}/secret-path")
    WebhookNotifier("cards", alerts).notify(failed_task_context())
    assert [r["path"] for r in received] == ["/secret-path"]


def test_a_receiver_error_is_an_error_not_silence(receiver):
    url, received = receiver
    with pytest.raises(AlertDeliveryError, match="webhook alert to http://127.0.0.1:[0-9]+/fail failed: HTTP Error 500"):
        WebhookNotifier("cards", AlertSettings(webhook_url=f"{url}/fail")).notify(failed_task_context())
    assert len(received) == 1


def test_a_missed_deadline_posts_the_run_that_is_late(receiver):
    url, received = receiver
    # what Airflow's deadline handling passes: the run as the REST API's model, dumped to JSON
    context = {
        "dag_run": {"dag_id": "cards_forward", "dag_run_id": "scheduled__2024-08-01", "logical_date": "2024-08-01T00:00:00Z"}
    }
    asyncio.run(deadline_missed(context, config_name="cards", deadline_day=5, webhook_url=f"{url}/hook"))
    message = received[0]["body"]
    assert message["event"] == "deadline_missed" and message["run_id"] == "scheduled__2024-08-01"
    assert "end of day 5" in message["deadline"]
