# The Airflow image of docker-compose.yaml: Airflow 3 + Java 17 (spark-submit runs the drivers in client mode)
# + the project's pinned requirements + the project itself (spark_jobs, summary_airflow), editable.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sfn "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/default-java
# One path on every CPU architecture: the JDK directory Debian installs is named after the architecture.
ENV JAVA_HOME=/usr/lib/jvm/default-java
# The stages' event-log folder (docker-compose's spark-events volume takes this owner and mode when first mounted):
# writable by the image's group 0, which compose runs every Airflow container in.
RUN mkdir -p /opt/airflow/spark-events && chown airflow:0 /opt/airflow/spark-events && chmod 2775 /opt/airflow/spark-events
USER airflow
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
# The project, installed editable at the path docker-compose mounts it on: the mounted code is what runs.
COPY --chown=airflow:0 . /opt/summary-pipeline
RUN pip install --no-cache-dir --no-deps -e /opt/summary-pipeline
