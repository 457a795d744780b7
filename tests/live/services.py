"""Real services for the live tier, as plain processes on loopback: PostgreSQL and Airflow's four services.

Everything started here is stopped here, by process id (each service runs in
its own process group, so its children go with it), also when a test fails.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = ROOT / "bin" / "airflow"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
# What a service's log must never show: the errors this tier exists to catch.
# Seconds from late records landing to their backfill run applied and gated, per path; printed at the session's end
# (tests/conftest.py) and recorded in bench/RESULTS.md (issue: a late record applied within two minutes of landing).
LATENCIES: dict[str, float] = {}
LOG_ERRORS = ("Failed to import plugin", "Trigger failed to load code", "ModuleNotFoundError", "No module named")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds_since(started_at, finished_iso):
    """Seconds from a wall-clock epoch time to an ISO time of Airflow's API (its runs' end_date)."""
    import datetime as dt

    return round(dt.datetime.fromisoformat(finished_iso.replace("Z", "+00:00")).timestamp() - started_at, 1)


def wait_for(what, check, timeout, interval=1.0):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)


def stop_group(process, timeout=30):
    """SIGTERM to the process group of ``process``, SIGKILL to what is left after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            # The leader is gone; its children (task supervisors, spark-submit JVMs) may not be.
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# --- PostgreSQL -----------------------------------------------------------------------------------


def postgres_bindir():
    """The directory of Debian's PostgreSQL server binaries, installing the package when absent and possible.

    Returns (bindir, None) or (None, the reason there is none).
    """
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update"], check=False, timeout=600, **quiet)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "postgresql"], check=False, timeout=900, env=env, **quiet)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent, None
    return None, "PostgreSQL's server is not installed and could not be (install Debian's `postgresql` package as root)"


class Postgres:
    """A throw-away cluster under a temp directory, on a free loopback port, trust auth for local users."""

    def __init__(self, bindir):
        self.bindir = Path(bindir)
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are private to root, and initdb refuses to run as root.
        self.base = Path(tempfile.mkdtemp(prefix="summary-live-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.pid = None
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args, **kwargs):
        command = [str(a) for a in args]
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, **kwargs)

    def start(self):
        if self._user:
            shutil.chown(self.base, self._user)
        self._run(self.bindir / "initdb", "-D", self.data, "--auth=trust", "-U", "airflow", "--encoding=UTF8")
        self._run(
            self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start",
            "-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1",
        )  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self._run(self.bindir / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "airflow", "airflow")
        return self

    @property
    def url(self):
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
                wait_for("PostgreSQL to stop", lambda: not _alive(self.pid), 60, 0.5)
            except (ProcessLookupError, TimeoutError):
                _kill(self.pid)
        shutil.rmtree(self.base, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- Airflow -------------------------------------------------------------------------------------


class AirflowServices:
    """api-server, scheduler, dag-processor and triggerer as separate processes, as every deployment runs them."""

    def __init__(self, home, database_url, extra_env):
        self.home = Path(home)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **extra_env,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(16).hex(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            # Find DAG files and changes within seconds, not minutes.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.processes = {}
        self.token = None

    def log(self, service):
        return self.home / f"{service}.log"

    def start(self, timeout=240):
        self.home.mkdir(parents=True, exist_ok=True)
        # bin/airflow's first use: migrate the (PostgreSQL) metadata database and create the pools.
        result = subprocess.run([str(AIRFLOW), "pools", "list"], env=self.env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"bin/airflow could not set up the metadata database:\n{result.stderr[-3000:]}")
        for service in SERVICES:
            args = [service] + (["--port", str(self.port)] if service == "api-server" else [])
            with open(self.log(service), "ab") as log:
                self.processes[service] = subprocess.Popen(
                    [str(AIRFLOW), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        wait_for("the api-server's health endpoint", self._healthy, timeout, 2)
        passwords = wait_for("the generated admin password", self._password, 60)
        self.token = self._post("/auth/token", {"username": "admin", "password": passwords})["access_token"]
        return self

    def stop(self):
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.processes.values():
            stop_group(process)

    def _healthy(self):
        for service, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {service} exited ({process.returncode}); its log:\n{self.tail(service)}")
        try:
            with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(p) or {}).get("status") == "healthy" for p in parts) and health

    def _password(self):
        path = self.home / "passwords.json"
        return path.exists() and json.loads(path.read_text()).get("admin")

    def tail(self, service, lines=60):
        path = self.log(service)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def log_errors(self):
        """Lines of the services' logs that name an import or trigger-load error."""
        found = []
        for service in SERVICES:
            text = self.log(service).read_text(errors="replace") if self.log(service).exists() else ""
            found += [f"{service}: {line.strip()}" for line in text.splitlines() if any(e in line for e in LOG_ERRORS)]
        return found

    # --- the REST API, as the UI uses it ---

    def _request(self, method, path, body=None, accept="application/json"):
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": accept}
            | ({"Authorization": f"Bearer {self.token}"} if self.token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path} -> {exc.code}: {exc.read().decode()[:2000]}") from None
        return json.loads(text) if text and accept == "application/json" else text

    def _post(self, path, body):
        return self._request("POST", path, body)

    def get(self, path):
        return self._request("GET", path)

    def status_without_token(self, path, token=None):
        """The HTTP status of GET ``path`` with no credentials (or another token): what a stranger gets."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.base_url + path, headers=headers), timeout=60) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def unpause(self, dag_id):
        return self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id, conf=None):
        return self._post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})

    def dag_runs(self, dag_id):
        runs = self.get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after&limit=100")["dag_runs"]
        return runs

    def task_instances(self, dag_id, run_id):
        rows = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances?limit=100")["task_instances"]
        return {ti["task_id"]: ti for ti in rows}

    def get_text(self, path):
        return self._request("GET", path, accept="text/html")

    def xcom(self, dag_id, run_id, task_id, key="return_value"):
        path = f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances/{task_id}/xcomEntries/{key}"
        value = self.get(path + "?deserialize=true")["value"]
        return json.loads(value) if isinstance(value, str) else value

    def task_log(self, dag_id, run_id, task_id, try_number=1):
        path = f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        return "\n".join(map(_log_line, self.get(path)["content"]))

    def explain(self, dag_id, run_id):
        """Task states of a run and the end of every failed task's log: what an assertion message needs."""
        tasks = self.task_instances(dag_id, run_id)
        lines = [f"{dag_id} {run_id}: " + ", ".join(f"{t}={ti['state']}" for t, ti in tasks.items())]
        for task_id, ti in tasks.items():
            if ti["state"] in ("failed", "upstream_failed") and ti["try_number"]:
                log = self.task_log(dag_id, run_id, task_id, ti["try_number"]).splitlines()
                lines += [f"--- {task_id} (end of its log):", *log[-40:]]
        return "\n".join(lines)

    def wait_for_run(self, dag_id, run_id, timeout, states=("success", "failed")):
        def finished():
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")
            return run if run["state"] in states else None

        return wait_for(f"run {run_id} of {dag_id} to end", finished, timeout, 3)


def _quote(text):
    return urllib.request.quote(text, safe="")


def _log_line(entry):
    """One structured log entry as text, with the exception it carries (type and message) if any."""
    if not isinstance(entry, dict):
        return str(entry)
    errors = [f"{e.get('exc_type')}: {e.get('exc_value')}" for e in entry.get("error_detail") or []]
    return " ".join([entry.get("event", ""), *errors])
