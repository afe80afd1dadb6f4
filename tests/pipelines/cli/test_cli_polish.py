"""The CLI says what it expected: date formats, the nearest command, a confirmation before deleting data and
the versions that do exist."""

from __future__ import annotations

import argparse
import logging

import pytest

from pipelines.cli import main as cli
from pipelines.cli.common import iso_date
from pipelines.contract import ExitCode

DATE_WORDS = ("date", "as_of", "start", "end", "after", "since", "until")


def _date_options(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _date_options(sub, (*path, name))
        elif (
            any(w in action.dest for w in DATE_WORDS)
            and action.type not in (int, float)
            and "format" not in action.dest
        ):
            yield " ".join(path), action


def test_every_date_option_names_the_expected_format(capsys):
    options = list(_date_options(cli.build_parser()))
    assert len(options) > 10
    assert [(cmd, a.dest) for cmd, a in options if a.type is not iso_date] == []
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--as-of", "01/12/2025"])
    assert exit_info.value.code == 2
    assert "'01/12/2025' is not a date: expected YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("typed", "meant"), [(["scroe", "--date", "2026-01-01"], "score"), (["promte", "3"], "promote")]
)
def test_unknown_subcommand_suggests_the_nearest(typed, meant, capsys):
    with pytest.raises(SystemExit):
        cli.main(typed)
    assert f"unknown command {typed[0]!r}: did you mean {meant!r}?" in capsys.readouterr().err


def test_reset_asks_and_without_a_terminal_needs_yes(config, tmp_path, monkeypatch, caplog):
    import yaml

    from pipelines.warehouse import open_warehouse

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert cli.main(["--config", str(path), "init-warehouse"]) == 0
    with open_warehouse(config) as wh:
        wh.execute(wh.render("INSERT INTO {products} (product_id, title, category, price) VALUES (1, 'a', 'b', 1.0)"))

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with caplog.at_level(logging.ERROR):
        assert cli.main(["--config", str(path), "init-warehouse", "--reset"]) == ExitCode.CONFIG
    assert "add --yes to proceed" in caplog.text
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert cli.main(["--config", str(path), "init-warehouse", "--reset"]) == ExitCode.CONFIG
    with open_warehouse(config) as wh:
        assert wh.row_count("products") == 1  # nothing deleted
    assert cli.main(["--config", str(path), "init-warehouse", "--reset", "--yes"]) == 0
    with open_warehouse(config) as wh:
        assert wh.row_count("products") == 0


def test_promote_a_missing_version_lists_the_versions(config, tmp_path):
    from mlflow.tracking import MlflowClient

    from pipelines.registry import UnknownVersionError, promote

    with pytest.raises(UnknownVersionError, match="no versions yet"):
        promote(config, "7")
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    name = config.registry.model_name
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=tmp_path.as_uri())
    client.set_registered_model_alias(name, "champion", "2")
    with pytest.raises(UnknownVersionError, match=r"has no version '7'; versions: 1, 2 \(@champion\)"):
        promote(config, "7")
