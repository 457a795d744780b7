# The Airflow image of docker-compose.yaml: Airflow 3 + Java 17 (spark-submit runs the drivers in client mode)
# + the project's pinned requirements + the project itself (spark_jobs, summary_airflow), editable.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
USER airflow
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
# The project, installed editable at the path docker-compose mounts it on: the mounted code is what runs.
COPY --chown=airflow:0 . /opt/summary-pipeline
RUN pip install --no-cache-dir --no-deps -e /opt/summary-pipeline
