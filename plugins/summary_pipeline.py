"""The summary pipeline's Airflow plugin: its status API, mounted in the api-server at /summary-pipeline.

Airflow's plugin loader executes every ``.py`` file in this folder as a
top-level module, so the code lives in the installed ``summary_airflow``
package and this file only registers it.
"""

from airflow.plugins_manager import AirflowPlugin

from summary_airflow.status_api import create_app


class SummaryPipelinePlugin(AirflowPlugin):
    name = "summary_pipeline"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/summary-pipeline", "name": "Summary pipeline status"}]
