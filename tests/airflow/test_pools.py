"""A config added to a running Airflow gets its writers pool from the plugin's listener, in the real metadata DB."""

import threading
import time
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.airflow


def _dag_run(*pools):
    """What the scheduler hands the listener: a run whose ``dag`` it has set (the listener reads nothing else)."""
    return SimpleNamespace(dag_id="added_forward", dag=SimpleNamespace(tasks=[SimpleNamespace(pool=p) for p in pools]))


def _wait_for(check, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_the_first_run_of_a_new_configs_dag_creates_its_pool_and_leaves_others_alone(airflow_db):
    from airflow.listeners.listener import get_listener_manager
    from airflow.models.pool import Pool

    hook = get_listener_manager().hook  # Airflow's own manager, with the listeners of plugins/ (the scheduler's)
    for name in ("summary_added_writers", "elsewhere"):
        if Pool.get_pool(name) is not None:
            Pool.delete_pool(name)
    hook.on_dag_run_running(dag_run=_dag_run("summary_added_writers", "default_pool", "elsewhere"), msg="")
    # made on a thread of its own (never in the scheduler's session): it appears shortly after the call returns
    assert _wait_for(lambda: Pool.get_pool("summary_added_writers") is not None)
    created = Pool.get_pool("summary_added_writers")
    assert created.slots == 1 and "config added" in created.description
    assert Pool.get_pool("elsewhere") is None, "a pool not named like the pipeline's is not ours to create"

    Pool.create_or_update_pool("summary_added_writers", 3, "widened by its owner", False)
    hook.on_dag_run_running(dag_run=_dag_run("summary_added_writers"), msg="")
    for thread in [t for t in threading.enumerate() if t.name == "summary-pool-keeper"]:
        thread.join(timeout=20)
    assert Pool.get_pool("summary_added_writers").slots == 3, "an existing pool is left as its owner set it"
    Pool.delete_pool("summary_added_writers")


def test_a_listener_failure_never_reaches_the_scheduler(airflow_db):
    from summary_airflow.pools import pool_keeper

    broken = SimpleNamespace(dag_id="x", dag=SimpleNamespace(tasks=None))  # not iterable
    assert pool_keeper.on_dag_run_running(dag_run=broken, msg="") is None  # logged, not raised
