"""Security properties of replyflow, checked mechanically (docs/SECURITY.md explains each).

Why generic checks: a list of endpoints written by hand goes stale the day someone adds a
route.  These tests enumerate Flask's ``url_map``, the Settings fields, pyproject.toml and
the installed packages, so new endpoints, secrets and dependencies are covered automatically.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

REPO_ROOT = Path(__file__).resolve().parents[2]
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC_API = {"/api/v1/health"}  # the only endpoint under /api/v1 without a token (load balancers)


def _url(rule: Any) -> str:
    """A concrete URL for a rule: every converter argument becomes a harmless value."""
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", "X-20261124-0001", url)
    return url


def _rules(app: Any) -> list[Any]:
    return [r for r in app.url_map.iter_rules()]


# --- authentication ------------------------------------------------------------------------
def test_every_api_write_endpoint_needs_the_token(reply_app: Any, settings: Any) -> None:
    client = reply_app.test_client()
    checked = []
    for rule in _rules(reply_app):
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in sorted((rule.methods or set()) & WRITE_METHODS):
            url = _url(rule)
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": settings.secret("api_token")},
                            {"Authorization": f"bearer {settings.secret('api_token')}x"}):
                r = client.open(url, method=method, json={"status": "resolved"}, headers=headers)
                assert r.status_code == 401, (method, url, headers, r.status_code)
                assert r.is_json and r.json["error"]["code"] == "unauthorized"
            checked.append((method, rule.rule))
    assert ("POST", "/api/v1/replies") in checked and ("PATCH", "/api/v1/tickets/<ticket_id>") in checked, checked


def test_every_api_read_endpoint_but_health_needs_the_token(reply_app: Any) -> None:
    client = reply_app.test_client()
    for rule in _rules(reply_app):
        if rule.rule.startswith("/api/v1") and "GET" in (rule.methods or set()) and rule.rule not in PUBLIC_API:
            assert client.get(_url(rule)).status_code == 401, rule.rule
    assert client.get("/api/v1/health").status_code == 200


def test_workspace_routes_are_covered_elsewhere(reply_app: Any) -> None:
    """Outside /api/v1 every route is the signed-in workspace: login, CSRF and roles are checked route by
    route in tests/unit/test_workspace_security.py; here only that nothing outside /api/v1 skips that module."""
    from replyflow.web.auth import PUBLIC_ENDPOINTS

    public = {r.endpoint for r in _rules(reply_app) if not r.rule.startswith("/api/") and r.endpoint in PUBLIC_ENDPOINTS}
    assert public == {"auth.login", "dashboard.static"}


def test_token_comparison_is_constant_time(reply_client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from replyflow.reply import auth

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    token = settings.secret("api_token")
    assert reply_client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert reply_client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token[:-1]}?"}).status_code == 401
    assert len(calls) == 2, "the token check must go through hmac.compare_digest"
    assert calls[0][1] == token.encode() and calls[1][1] == token.encode()


# --- secrets -------------------------------------------------------------------------------
def _secret_fields() -> dict[str, Any]:
    from replyflow.settings import Settings

    out = {}
    for name, field in Settings.model_fields.items():
        secretish = re.search(r"token|secret|password|key$|api_key", name) and not name.endswith(("_seconds", "_path"))
        if "SecretStr" in str(field.annotation) or secretish:
            out[name] = field
    return out


def test_settings_have_no_default_secrets() -> None:
    fields = _secret_fields()
    assert {"api_token", "x_bearer_token", "x_api_key", "x_api_secret", "x_access_token", "x_access_token_secret"} <= set(fields)
    for name, field in fields.items():
        assert field.default is None and field.default_factory is None, f"{name} has a default value"
        assert "SecretStr" in str(field.annotation), f"{name} is not a SecretStr (would show in repr/logs)"


def test_secrets_come_only_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from replyflow.settings import Settings

    monkeypatch.chdir(tmp_path)  # no .env, no replyflow.toml here
    for key in list(__import__("os").environ):
        if key.startswith(("REPLYFLOW_", "X_")) or key in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}:
            monkeypatch.delenv(key, raising=False)
    bare = Settings()
    assert all(getattr(bare, name) is None for name in _secret_fields())
    monkeypatch.setenv("REPLYFLOW_API_TOKEN", "from-env-0123456789")
    monkeypatch.setenv("X_API_SECRET", "x-secret-0123456789")
    env = Settings()
    assert env.secret("api_token") == "from-env-0123456789" and env.secret("x_api_secret") == "x-secret-0123456789"
    shown = repr(env) + str(env.model_dump()) + env.model_dump_json()
    assert "from-env-0123456789" not in shown and "x-secret-0123456789" not in shown


def test_dotenv_is_git_ignored_and_untracked() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO_ROOT, timeout=30)
    assert ignored.returncode == 0, ".env must be listed in .gitignore"
    tracked = subprocess.run(["git", "ls-files", "--", ".env", "*.env", "**/.env"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=30).stdout.split()
    assert tracked == [], f"secret files are tracked: {tracked}"


def test_no_secrets_in_tracked_files() -> None:
    """No X/API credentials committed by accident: nothing that looks like a bearer token or key."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30).stdout.split()
    pattern = re.compile(r"AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{20,}|(?:REPLYFLOW_API_TOKEN|X_API_SECRET|X_ACCESS_TOKEN_SECRET)"
                         r"\s*=\s*['\"]?[A-Za-z0-9_\-]{16,}")
    hits = []
    for name in files:
        path = REPO_ROOT / name
        if name.startswith("tests/"):  # tests use made-up tokens on purpose
            continue
        if path.suffix in {".png", ".onnx", ".parquet", ".jar", ".gz", ".zip", ".csv", ".npy", ".pkl", ".keras"}:
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="ignore")
        except OSError:
            continue
        hits += [f"{name}: {m.group(0)[:30]}..." for m in pattern.finditer(text)]
    assert hits == []


# --- logs ----------------------------------------------------------------------------------
@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_logs_redact_tokens(restore_logging: None, tmp_path: Path, capfd: pytest.CaptureFixture[str],
                            settings: Any) -> None:
    from replyflow.logs import setup_logging
    from replyflow.reply.auth import resolve_api_token

    logfile = tmp_path / "logs" / "test.log"
    setup_logging("DEBUG", logfile=logfile)
    token = resolve_api_token(settings)  # registers the configured token with the redactor
    random_token = "AbC.def-123_456~xyz"
    log = logging.getLogger("replyflow.test")
    log.info("configured token %s", token)
    log.info("header Authorization: Bearer %s", random_token)
    log.warning("request failed: %s", {"api_token": "p4ssw0rd-in-dict", "password": "hunter2-hunter2"})
    log.info("url https://example.invalid/cb?token=q1w2e3r4t5&x=1")
    try:
        raise RuntimeError(f"401 Unauthorized for Bearer {random_token} using {token}")
    except RuntimeError:
        log.exception("post failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    outputs = {"file": logfile.read_text(encoding="utf-8"), "stderr": capfd.readouterr().err}
    for where, text in outputs.items():
        assert "Bearer ***" in text, where
        for secret in (token, random_token, "p4ssw0rd-in-dict", "hunter2-hunter2", "q1w2e3r4t5"):
            assert secret not in text, f"{secret!r} leaked to {where}"
        assert "post failed" in text and "RuntimeError: 401 Unauthorized for Bearer ***" in text


# --- dependencies --------------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_dependencies_are_pinned_or_bounded() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    assert requirements
    for req in requirements:
        spec = re.split(r"[\s;]", req, maxsplit=1)[0]
        if "==" in spec:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,\-]+\])?==[0-9][0-9A-Za-z.+!\-]*", spec), req
        else:
            assert re.search(r">=?\s*[0-9]", spec) and re.search(r"<=?\s*[0-9]", spec), f"unbounded dependency: {req}"


def test_lock_file_pins_every_installed_package() -> None:
    lock_path = REPO_ROOT / "requirements.lock"
    assert lock_path.is_file(), "requirements.lock is missing (make lock)"
    locked: dict[str, str] = {}
    for line in lock_path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)(?:\s*;.*)?", line)
        assert match, f"not pinned with ==: {line}"
        locked[_norm(match.group(1))] = match.group(2)
    if Path(sys.prefix) != REPO_ROOT / ".venv":
        pytest.skip("not running in the project's .venv: cannot compare installed packages with the lock")
    tooling = {"pip", "setuptools", "wheel", "replyflow"}  # pip freeze leaves these out on purpose
    mismatched = {}
    for dist in md.distributions():
        name = _norm(dist.metadata["Name"])
        if name not in tooling and locked.get(name) != dist.version:
            mismatched[name] = (dist.version, locked.get(name))
    assert mismatched == {}, f"installed (version, locked): {mismatched}; run make lock"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for req in project["dependencies"]:
        name = _norm(re.split(r"[=<>!~\[\s;]", req, maxsplit=1)[0])
        assert name in locked, f"{name} is a dependency but not in requirements.lock"


def test_spark_task_closures_carry_no_secrets(settings: Any) -> None:
    """What travels to Spark workers (the mapInPandas functions) holds policy numbers, not tokens."""
    pytest.importorskip("pyspark")
    from pyspark import cloudpickle

    from replyflow.core.policy import PolicyConfig
    from replyflow.stream.enrich import EnrichPartitions, parse_partitions

    secrets = settings.model_copy(update={"x_api_secret": SecretStr("x-secret-abcdef123456"),
                                          "x_bearer_token": SecretStr("bearer-abcdef123456")})
    for fn in (EnrichPartitions(str(secrets.models_dir), PolicyConfig.from_settings(secrets), cascade_threshold=0.8),
               parse_partitions):
        blob = cloudpickle.dumps(fn)
        for value in (secrets.secret("api_token"), "x-secret-abcdef123456", "bearer-abcdef123456"):
            assert value.encode() not in blob, f"{value} would be shipped to Spark workers"
