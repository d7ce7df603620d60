"""The CLI's argument errors: one line naming the command, exit 2, never argparse's usage block."""

from __future__ import annotations

import pytest

from driftline_cli.main import build_parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["drift-check", "--lookback", "1h", "--last", "5"],
         "driftline: error: drift-check: argument --last: not allowed with argument --lookback"),
        (["drift-check", "--lookback", "-1h"],
         "driftline: error: drift-check: argument --lookback: expected one argument"),
        (["train", "--folds", "x"], "driftline: error: train: argument --folds: invalid int"),
        (["nope"], "driftline: error: argument COMMAND: invalid choice: 'nope'"),
    ],
)  # fmt: skip
def test_an_argument_error_is_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(expected), err
    assert err.count("\n") == 1 and "usage:" not in err, err
