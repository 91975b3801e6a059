"""Render docs/CONFIGURATION.md from the Settings class, so the reference cannot drift.

``python -m replyflow.config_docs > docs/CONFIGURATION.md`` regenerates it; a unit test
fails when the committed file differs from what the code says.
"""

from __future__ import annotations

from replyflow.settings import Settings

HEADER = """# Configuration reference

Generated from `src/replyflow/settings.py` by `python -m replyflow.config_docs > docs/CONFIGURATION.md`.

Every setting can be given, highest priority first, as an environment variable (`REPLYFLOW_<NAME>`,
or the alternative name shown), in an untracked `.env` file in the working directory, or in a TOML
file (`replyflow.toml`, or the path in `REPLYFLOW_CONFIG`) with the field name as key. Relative paths
are resolved against the working directory. Secrets are never logged and never have a default.

| setting | environment | default | description |
|---|---|---|---|
"""


def _default(field_name: str) -> str:
    field = Settings.model_fields[field_name]
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if field.annotation is not None and "SecretStr" in str(field.annotation):
        return "(secret, unset)"
    if value is None or value == "":
        return "(unset)"
    return f"`{value}`"


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        env = [f"REPLYFLOW_{name.upper()}"]
        alias = field.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            env = [str(c) for c in alias.choices]
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {', '.join(f'`{e}`' for e in env)} | {_default(name)} | {description} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
