"""The summary pipeline's Airflow plugin: its status API and pipeline page, mounted in the api-server at
/summary-pipeline, and the page's entry in the UI's Browse menu.

Airflow's plugin loader executes every ``.py`` file in this folder as a
top-level module, so the code lives in the installed ``summary_airflow``
package and this file only registers it.
"""

from airflow.plugins_manager import AirflowPlugin

from summary_airflow.pools import pool_keeper
from summary_airflow.status_api import create_app

URL_PREFIX = "/summary-pipeline"


class SummaryPipelinePlugin(AirflowPlugin):
    name = "summary_pipeline"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Summary pipeline status"}]
    # In the scheduler: a config added to a running Airflow gets its writers pool when its first DAG run starts.
    listeners = [pool_keeper]
    # Airflow 3.1+: a menu entry showing ``href`` in an iframe of the UI at /plugin/<url_route> (without a url_route
    # it would be a plain link). The iframe is same-origin, so the UI's session cookie authenticates the page.
    external_views = [
        {
            "name": "Summary pipeline",
            "href": f"{URL_PREFIX}/page",
            "destination": "nav",
            "category": "browse",
            "url_route": "summary-pipeline",
        }
    ]
