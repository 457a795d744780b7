"""The plugin's routes as a deployment exposes them: who may read which config (Airflow's own auth manager and real
JWTs), what answers without a login, a catalog that never answers, and report files that are not reports.

The users are SimpleAuthManager's, in two teams: the config's DAGs belong to team_a.
"""

import json
import os
import socket
import threading
import time

import pytest

from summary_airflow.access import config_dag_ids
from tests.airflow.test_pipeline_page import EXAMPLE, Elements, site  # noqa: F401  # the tables and reports

SECRET = os.urandom(16).hex()
USERS = "admin:admin,alice:viewer:team_a,bob:viewer:team_b"


@pytest.fixture
def auth(monkeypatch, airflow_db):
    """Airflow's configured auth manager (SimpleAuthManager) and a function minting a user's real token."""
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", SECRET)  # Airflow keeps its signer per process: one secret
    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER", "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", USERS)
    import airflow.api_fastapi.app as airflow_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    airflow_app._AuthManagerState.instance = None  # the one a test before this one built, with another secret
    manager = airflow_app.create_auth_manager()
    roles = {}
    for entry in USERS.split(","):
        name, role, *teams = entry.split(":")
        roles[name] = (role, teams[0].split("|") if teams else [])

    def token(name):
        role, teams = roles[name]
        return manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role, teams=teams))

    yield token
    airflow_app._AuthManagerState.instance = None


@pytest.fixture
def app_client(site, auth):  # noqa: F811
    from fastapi.testclient import TestClient

    from summary_airflow.status_api import create_app

    team_a = lambda dag_ids: {d: "team_a" for d in dag_ids if d.startswith("summary_") and not d.startswith("summary_eu")}  # noqa: E731
    app = create_app(configs_dir=site["configs"], warehouse=str(site["warehouse"]), dag_teams=team_a)
    client = TestClient(app)

    def get(path, user=None):
        headers = {"Authorization": f"Bearer {auth(user)}"} if user else {}
        return client.get(path, headers=headers)

    get.client = client
    return get


def test_every_route_wants_a_login_and_the_api_docs_are_not_served(app_client):
    for path in ("/status", "/status/summary", "/page", "/page/summary", "/page-data/summary", "/metrics"):
        assert app_client(path).status_code == 401, path
    for path in ("/docs", "/redoc", "/openapi.json"):  # FastAPI would serve these outside the app's dependencies
        assert app_client(path).status_code == 404, path
        assert app_client(path, "admin").status_code == 404, path


def test_a_token_signed_with_another_secret_is_refused(app_client, auth):
    import jwt

    claims = jwt.decode(auth("admin"), options={"verify_signature": False})  # a real admin token's claims ...
    forged = jwt.encode(claims, "not-the-deployments-secret", algorithm=jwt.get_unverified_header(auth("admin"))["alg"])
    response = app_client.client.get("/status", headers={"Authorization": f"Bearer {forged}"})  # ... signed elsewhere
    assert response.status_code in (401, 403) and "summary" not in response.text


def test_a_user_sees_a_config_only_with_read_access_to_its_dags(app_client):
    # alice is in the team that owns summary's DAGs; bob is in another one; the admin sees everything.
    for user in ("alice", "admin"):
        assert {s["name"] for s in app_client("/status", user).json()} >= {"summary"}, user
        assert app_client("/status/summary", user).json()["name"] == "summary"
        assert app_client("/page-data/summary", user).json()["summary_table"] == "local.db.summary"
        assert "cfg-summary" in {s["id"] for s in Elements(app_client("/page", user).text).find("section")}
    assert [s["name"] for s in app_client("/status", "bob").json()] == ["summary_eu"]  # the team-less config only
    metrics = app_client("/metrics", "bob").text
    assert 'config="summary_eu"' in metrics and 'config="summary"' not in metrics  # the same rule for monitors
    for path in ("/status/summary", "/page/summary", "/page-data/summary"):
        response = app_client(path, "bob")
        assert response.status_code == 404, path  # as if it did not exist: its name, tables and figures stay hidden
        assert "local.db" not in response.text
    page = app_client("/page", "bob").text
    assert [s["id"] for s in Elements(page).find("section")] == ["cfg-summary_eu"]
    assert "local.db.summary" not in page


def test_each_of_a_configs_dags_decides(site, auth):  # noqa: F811
    """Read access to the forward DAG alone is not enough: the page shows what every one of its DAGs wrote."""
    from fastapi.testclient import TestClient

    from summary_airflow.status_api import create_app

    ids = config_dag_ids(type("Cfg", (), {"name": "summary"})())
    assert ids == ["summary_forward", "summary_backfill", "summary_maintenance", "summary_ingest"]
    only_ingest_elsewhere = lambda dag_ids: {"summary_ingest": "team_b"}  # noqa: E731
    app = create_app(configs_dir=site["configs"], warehouse=str(site["warehouse"]), dag_teams=only_ingest_elsewhere)
    response = TestClient(app).get("/status/summary", headers={"Authorization": f"Bearer {auth('alice')}"})
    assert response.status_code == 404


# --- a catalog that never answers -------------------------------------------------------------------


@pytest.fixture
def silent_catalog():
    """A loopback port that accepts connections and never says a word (a hung JVM, a half-open connection)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    for connection in held:
        connection.close()
    server.close()


def _in_thread(call, limit):
    """``call()``'s result, or a failure if it has not returned within ``limit`` seconds (instead of hanging)."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", call()), daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still waiting after {limit} s"
    return result["value"]


def test_a_catalog_that_never_answers_costs_a_note_not_the_api_server(site, silent_catalog, monkeypatch):  # noqa: F811
    from fastapi.testclient import TestClient

    from summary_airflow.status_api import create_app

    monkeypatch.setenv("SUMMARY_CATALOGS", json.dumps({"local": {"type": "rest", "uri": silent_catalog}}))
    monkeypatch.setenv("SUMMARY_CATALOG_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("SUMMARY_PAGE_TIMEOUT_SECONDS", "3")
    client = TestClient(create_app(configs_dir=site["configs"], warehouse=str(site["warehouse"]), require_login=False))
    started = time.monotonic()
    data = _in_thread(lambda: client.get("/page-data/summary").json(), 60)
    assert any("not read within 3 s" in n or "Timeout" in n for n in data["notes"]), data["notes"]
    assert data["months"] == [] and data["name"] == "summary"
    status = _in_thread(lambda: client.get("/status/summary"), 60)
    assert status.status_code in (502, 504) and "summary" in status.json()["detail"]
    listing = _in_thread(lambda: client.get("/status").json(), 60)
    assert {entry["name"] for entry in listing} == {"summary", "summary_eu"} and all("error" in e for e in listing)
    assert time.monotonic() - started < 60


def test_the_rest_catalog_client_itself_times_out(site, silent_catalog, monkeypatch):  # noqa: F811
    """The sensor's trigger reads through the same function: a silent catalog is an error after the timeout."""
    from spark_jobs.config import load_config
    from summary_airflow.metadata import load_table

    monkeypatch.setenv("SUMMARY_CATALOGS", json.dumps({"local": {"type": "rest", "uri": silent_catalog}}))
    monkeypatch.setenv("SUMMARY_CATALOG_TIMEOUT_SECONDS", "1")
    cfg = load_config(site["configs"] / "summary_config.json")

    def read():
        try:
            load_table(cfg, str(site["warehouse"]), cfg.summary_table)
        except Exception as exc:
            return exc
        return None

    error = _in_thread(read, 30)
    assert error is not None and "timed out" in str(error).lower(), repr(error)


def test_a_timeout_setting_that_is_not_a_number_names_the_variable(monkeypatch):
    from summary_airflow.metadata import catalog_timeout_seconds

    monkeypatch.setenv("SUMMARY_CATALOG_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ValueError, match=r"\$SUMMARY_CATALOG_TIMEOUT_SECONDS: 'soon'"):
        catalog_timeout_seconds()


# --- report files that are not reports ---------------------------------------------------------------


def _client(site):  # noqa: F811
    from fastapi.testclient import TestClient

    from summary_airflow.status_api import create_app

    return TestClient(create_app(configs_dir=site["configs"], warehouse=str(site["warehouse"]), require_login=False))


def test_a_report_with_odd_fields_is_left_out_not_a_500(site):  # noqa: F811
    reports = site["reports"]
    config = str(site["configs"] / "summary_config.json")
    odd = {"config": config, "mode": "forward", "status": "ok", "seconds": "n/a", "run_id": "odd"}
    (reports / "summary_forward.forward_month.manual__odd.1.json").write_text(json.dumps(odd))
    odd_case = {"config": config, "mode": "classify", "status": "ok", "accounts_by_case": {"I": "many"}, "run_id": "odd-c"}
    (reports / "summary_backfill.classify.manual__odd.1.json").write_text(json.dumps(odd_case))
    client = _client(site)
    response = client.get("/page")
    assert response.status_code == 200
    data = client.get("/page-data/summary").json()
    assert "odd" not in {r["run_id"] for r in data["stage_runs"]}
    assert "odd-c" not in {r["run_id"] for r in data["backfills"]}
    assert {r["run_id"] for r in data["stage_runs"]} >= {"forward-1", "classify-1"}  # the good ones are all there
    left_out = [n for n in data["notes"] if "report file(s) left out" in n]  # each bad file, named once
    assert len(left_out) == 1 and "summary_forward.forward_month.manual__odd.1.json" in left_out[0], data["notes"]
    assert "summary_backfill.classify.manual__odd.1.json" in left_out[0]


def test_deeply_nested_oversized_and_foreign_files_do_not_hide_a_configs_reports(site):  # noqa: F811
    reports = site["reports"]
    (reports / "summary_forward.forward_month.manual__deep.1.json").write_text("[" * 100_000)
    big = {"config": str(site["configs"] / "summary_config.json"), "mode": "forward", "run_id": "big", "pad": "x" * (2 << 20)}
    (reports / "summary_forward.forward_month.manual__big.1.json").write_text(json.dumps(big))
    for i in range(30):  # a config named summary_x would match the file glob; its files must not crowd out ours
        (reports / f"summary_x_forward.forward_month.manual__{i}.1.json").write_text("{}")
    from spark_jobs.config import load_config
    from summary_airflow.pipeline_page import read_reports

    cfg = load_config(site["configs"] / "summary_config.json")
    every = read_reports(reports, cfg)
    assert len(every) == 9 and {r.dag_id for r in every} == {"summary_forward", "summary_backfill"}  # the fixture's
    # 11 places: the 9 reports, the fixture's half-written file and the nested one (the oversized one takes none);
    # the 30 newer files of summary_x take none either.
    assert read_reports(reports, cfg, limit=11) == every
    assert "big" not in {r.report.get("run_id") for r in every}
    data = _client(site).get("/page-data/summary").json()
    assert not [n for n in data["notes"] if "run reports" in n], data["notes"]
    assert any("manual__deep" in n and "manual__big" in n for n in data["notes"]), data["notes"]
    assert data["quality_gate"]["run_id"] == "check-new"


def test_status_is_read_afresh_while_the_page_is_kept(site, monkeypatch):  # noqa: F811
    """A monitor polls /status to see a delivery arrive: it must not lag; the heavier page may."""
    import pyarrow as pa

    from tests.airflow.test_pipeline_page import _catalog

    client = _client(site)
    before = client.get("/status/summary").json()["source_snapshot"]
    months_before = client.get("/page-data/summary").json()["months"]
    table = _catalog(site["warehouse"]).load_table("db.accounts_all")
    table.append(pa.table({"cons_acct_key": pa.array([99], pa.int64()), "rpt_as_of_mo": ["2024-09"]}))
    assert client.get("/status/summary").json()["source_snapshot"] not in (None, before)
    assert client.get("/page-data/summary").json()["months"] == months_before  # kept for $SUMMARY_PAGE_CACHE_SECONDS
