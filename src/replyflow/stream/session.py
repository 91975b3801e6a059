"""The SparkSession of the stream job, configured from Settings.

Why here and not inline: the Kafka connector jars must be in ``spark.jars`` before the
first ``getOrCreate()`` of the process (a running JVM never picks them up later), and the
same session is reused by tests and the benchmark.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from replyflow.settings import Settings

log = logging.getLogger(__name__)

#: Spark quiet (WARN), Kafka clients quieter; also the base of the local standalone daemons' config (ops).
LOG4J2 = """\
# Written by replyflow.stream.session: Spark quiet (WARN), Kafka clients quieter.
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.kafka.name = org.apache.kafka
logger.kafka.level = error
logger.kafka010.name = org.apache.spark.sql.kafka010
logger.kafka010.level = error
logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativecode.level = error
logger.checkpoint.name = org.apache.spark.sql.execution.streaming.checkpointing
logger.checkpoint.level = error
logger.resolved.name = org.apache.spark.sql.execution.streaming.runtime.ResolveWriteToStream
logger.resolved.level = error
logger.dag.name = org.apache.spark.scheduler.DAGScheduler
logger.dag.level = error
logger.truncate.name = org.apache.spark.util.SparkStringUtils
logger.truncate.level = error
"""


def connector_jars(settings: Settings) -> list[Path]:
    """spark-sql-kafka and its dependencies (fetched by ``replyflow kafka fetch``)."""
    from replyflow.kafka.broker import spark_connector_jars

    return list(spark_connector_jars(settings))


def _log4j_file(settings: Settings) -> Path:
    path = settings.state_dir / "spark" / "log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != LOG4J2:
        path.write_text(LOG4J2)
    return path


def create_spark(settings: Settings, app_name: str = "replyflow-stream") -> SparkSession:
    """A SparkSession for the stream job (reuses the process's session if one is running)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers must use this interpreter (the venv with replyflow and the models' deps).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        if "spark-sql-kafka" not in active.sparkContext.getConf().get("spark.jars", ""):
            log.warning("Reusing a SparkSession started without the Kafka connector in spark.jars")
        return active
    jars = connector_jars(settings)
    if not jars:
        raise RuntimeError(f"no Spark Kafka connector jars in {settings.jars_dir / 'spark-kafka'}: run `replyflow kafka fetch`")
    log4j = _log4j_file(settings)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        # Micro-batches are small and have no shuffle worth re-planning: adaptive execution only
        # adds planning time to every one of a batch's jobs (measured: a third of a 500-row batch).
        .config("spark.sql.adaptive.enabled", "false")
        # Parquet commits move each file once (not twice); the batch-keyed overwrite keeps replays exact.
        .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("Spark %s session up (master %s, %d connector jars)", spark.version, settings.spark_master, len(jars))
    return spark
