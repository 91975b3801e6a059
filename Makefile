# The two commands of the README. Both set everything up first (idempotent).
.PHONY: demo test bootstrap bench lock

bootstrap:
	bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/replyflow demo

test: bootstrap
	.venv/bin/python -m pytest

bench: bootstrap
	.venv/bin/python bench/run_all.py

lock:
	.venv/bin/python -m pip freeze --exclude-editable | grep -v '^replyflow' > requirements.lock
