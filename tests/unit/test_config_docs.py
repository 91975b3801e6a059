from replyflow.config_docs import render


def test_configuration_reference_is_current(repo_root):
    """docs/CONFIGURATION.md must list every setting; regenerate with `python -m replyflow.config_docs`."""
    committed = (repo_root / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    assert committed == render()


def test_every_setting_is_described():
    from replyflow.settings import Settings

    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []
