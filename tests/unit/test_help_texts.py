"""Issue 17 item 8: every command's every option and argument says what it is for in ``--help``.

Each command in :data:`xnatfs.cli.COMMANDS` is run with ``--help`` as a user would; the parser that
prints the help is caught and every one of its actions (and those of its sub-commands) must carry a
help text. A command added later is covered without changing this test.
"""

from __future__ import annotations

import argparse

import pytest

from xnatfs import cli

pytestmark = pytest.mark.unit


def exit_code_of(argv: list[str]) -> int | str | None:
    """The exit status of ``xnatfs ARGV``, whether the command returns it or argparse exits with it."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def parsers_of(command: str, monkeypatch: pytest.MonkeyPatch) -> list[argparse.ArgumentParser]:
    shown: list[argparse.ArgumentParser] = []
    monkeypatch.setattr(argparse.ArgumentParser, "print_help", lambda self, file=None: shown.append(self))
    assert exit_code_of([command, "--help"]) == 0
    assert len(shown) == 1, f"xnatfs {command} --help printed no parser's help"
    found, pending = [], [shown[0]]
    while pending:
        parser = pending.pop()
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return found


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_option_of_every_command_has_help(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = []
    for parser in parsers_of(command, monkeypatch):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "options without help: " + ", ".join(missing)


@pytest.mark.parametrize("command", ["import", "prearchive", "mount"])
def test_user_has_the_short_option_u(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for parser in parsers_of(command, monkeypatch):
        strings = {s for action in parser._actions for s in action.option_strings}
        if "--user" in strings:
            assert "-u" in strings, parser.prog


def test_prearchive_help_names_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code_of(["prearchive", "--help"]) == 0
    out = capsys.readouterr().out
    for action in ("list", "archive", "move", "delete", "rebuild"):
        assert action in out
