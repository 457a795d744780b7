"""Alerts reach a real HTTP receiver on loopback: a failed task's message, a missed deadline's, and clear errors."""

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from spark_jobs.config import AlertSettings, load_config
from summary_airflow.alerts import AlertDeliveryError, WebhookNotifier, deadline_missed, forward_deadline
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
    assert message["error_type"] == "RuntimeError" and "error" not in message  # the text may hold record data
    assert "exit code 2" not in json.dumps(message)


def test_the_webhook_url_may_come_from_the_environment(receiver, monkeypatch):
    url, received = receiver
    alerts = AlertSettings(webhook_url_env="SUMMARY_ALERT_CARDS")
    with pytest.raises(AlertDeliveryError, match="environment variable SUMMARY_ALERT_CARDS is not set"):
        WebhookNotifier("cards", alerts).notify(failed_task_context())
    monkeypatch.setenv("SUMMARY_ALERT_CARDS", f"{url}/secret-path")
    WebhookNotifier("cards", alerts).notify(failed_task_context())
    assert [r["path"] for r in received] == ["/secret-path"]


def test_a_receiver_error_is_an_error_not_silence(receiver):
    url, received = receiver
    with pytest.raises(AlertDeliveryError, match="webhook alert to http://127.0.0.1:[0-9]+ failed: HTTP Error 500"):
        WebhookNotifier("cards", AlertSettings(webhook_url=f"{url}/fail")).notify(failed_task_context())
    assert len(received) == 1


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "configs" / "airflow" / "cards.json"


def cards_config(tmp_path, webhook):
    raw = json.loads(FIXTURE.read_text())
    raw["airflow"]["alerts"] = {"webhook": webhook, "forward_deadline_day": 5}
    path = tmp_path / "cards.json"
    path.write_text(json.dumps(raw))
    return load_config(path)


def test_a_missed_deadline_posts_the_run_that_is_late(receiver, tmp_path):
    url, received = receiver
    cfg = cards_config(tmp_path, {"url": f"{url}/hook"})
    kwargs = forward_deadline(cfg).callback.kwargs
    # what Airflow's deadline handling passes: the run as the REST API's model, dumped to JSON
    context = {
        "dag_run": {"dag_id": "cards_forward", "dag_run_id": "scheduled__2024-08-01", "logical_date": "2024-08-01T00:00:00Z"}
    }
    asyncio.run(deadline_missed(context, **kwargs))
    message = received[0]["body"]
    assert message["event"] == "deadline_missed" and message["run_id"] == "scheduled__2024-08-01"
    assert "end of day 5" in message["deadline"]


def test_the_deadline_kwargs_hold_no_url(receiver, tmp_path):
    url, _ = receiver
    cfg = cards_config(tmp_path, {"url": f"{url}/services/T000/SECRET"})
    kwargs = forward_deadline(cfg).callback.kwargs  # serialized into Airflow's metadata DB
    assert "SECRET" not in json.dumps(kwargs) and url not in json.dumps(kwargs)
    assert kwargs == {"config_name": cfg.name, "deadline_day": 5, "config_path": cfg.path}


class RawServer:
    """A loopback TCP server answering each connection with ``reply(conn)``."""

    def __init__(self, reply):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0

        def serve():
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                self.connections += 1
                threading.Thread(target=reply, args=(conn,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.sock.close()


def _read_request(conn):
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)


def test_a_trickling_receiver_cannot_hold_delivery_past_its_deadline():
    def trickle(conn):
        _read_request(conn)
        try:
            for byte in b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"a" * 30:
                conn.send(bytes([byte]))
                time.sleep(1)  # each byte well within the socket timeout
        except OSError:
            pass
        conn.close()

    server = RawServer(trickle)
    try:
        started = time.monotonic()
        with pytest.raises(AlertDeliveryError, match="no complete answer within 2 s"):
            WebhookNotifier("cards", AlertSettings(webhook_url=f"{server.url}/hook", webhook_timeout_seconds=2)).notify(
                failed_task_context()
            )
        assert time.monotonic() - started < 3.5
    finally:
        server.close()


def test_a_redirect_is_not_followed(receiver):
    url, received = receiver

    def redirect(conn):
        _read_request(conn)
        conn.sendall(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {url}/hook\r\nContent-Length: 0\r\n\r\n".encode())
        conn.close()

    server = RawServer(redirect)
    try:
        with pytest.raises(AlertDeliveryError, match="HTTP Error 307 .redirects are not followed"):
            WebhookNotifier("cards", AlertSettings(webhook_url=f"{server.url}/hook")).notify(failed_task_context())
        assert received == [] and server.connections == 1
    finally:
        server.close()


def test_a_failed_delivery_names_only_scheme_host_and_port():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = f"http://user:PASSWORD@127.0.0.1:{port}/services/T000/B000/SLACKSECRET?token=QUERYSECRET"
    with pytest.raises(AlertDeliveryError) as info:
        WebhookNotifier("cards", AlertSettings(webhook_url=secret)).notify(failed_task_context())
    text = str(info.value)
    assert f"webhook alert to http://127.0.0.1:{port} failed" in text
    for part in ("user", "PASSWORD", "services", "SLACKSECRET", "QUERYSECRET"):
        assert part not in text


@pytest.mark.parametrize("value", ["change-me-jwt-secret", '{"local": {"s3.secret-access-key": "password"}}',
                                   "postgresql+psycopg2://airflow:dbpass@postgres:5432/airflow", "http://"])  # fmt: skip
def test_a_value_that_is_not_an_http_url_is_refused_without_showing_it(monkeypatch, value):
    monkeypatch.setenv("SUMMARY_ALERT_CARDS", value)
    with pytest.raises(AlertDeliveryError, match="not an http:// or https:// URL with a host") as info:
        WebhookNotifier("cards", AlertSettings(webhook_url_env="SUMMARY_ALERT_CARDS")).notify(failed_task_context())
    assert "secret" not in str(info.value) and "dbpass" not in str(info.value)


def test_a_variable_without_the_prefix_is_refused_even_past_the_config_check(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "change-me")
    with pytest.raises(AlertDeliveryError, match="SUMMARY_ALERT_") as info:
        WebhookNotifier("cards", AlertSettings(webhook_url_env="AIRFLOW__API_AUTH__JWT_SECRET")).notify(failed_task_context())
    assert "change-me" not in str(info.value)


def test_the_alert_email_escapes_the_exception():
    from jinja2.sandbox import SandboxedEnvironment

    from summary_airflow.alerts import _email_notifier

    cfg = load_config(FIXTURE)
    template = _email_notifier(cfg).html_content
    ti = SimpleNamespace(task_id="t", dag_id="d", try_number=3, log_url="http://airflow.example/log")
    html = SandboxedEnvironment().from_string(template).render(ti=ti, run_id="r", exception=RuntimeError("<a href=x>col</a>"))
    assert "<a href=x>" not in html and "&lt;a href=x&gt;" in html
