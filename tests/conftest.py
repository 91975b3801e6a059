"""Shared pytest configuration. Component fixtures live in tests/fixtures/ (one module per component)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The user cache (the int8 teacher graph) inside the checkout, not the home folder; the Spark workers inherit it.
os.environ["XDG_CACHE_HOME"] = str(REPO_ROOT / ".cache" / "xdg")

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.reply",
    "tests.fixtures.postgres",
    "tests.fixtures.workspace",
    "tests.fixtures.cluster",
]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings isolated in a temporary state directory, with no .env or environment leaking in."""
    from replyflow.settings import Settings

    for key in list(os.environ):
        if key.startswith("REPLYFLOW_") or key in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "X_BEARER_TOKEN"}:
            monkeypatch.delenv(key, raising=False)
    return Settings(
        _env_file=None,
        state_dir=tmp_path / "var",
        models_dir=REPO_ROOT / "models",
        data_dir=REPO_ROOT / "data",
        jars_dir=REPO_ROOT / ".cache" / "jars",
        jvm_dir=REPO_ROOT / "jvm",
        api_token="test-token-123456",
        # the policy's thresholds pinned, so API and store tests do not move when they are re-chosen
        reply_min_needs_reply=0.5,
        reply_min_topic_confidence=0.5,
    )
