"""The versioned messages between the operator and its Jobs (driftline.job_contracts)."""

from __future__ import annotations

import pytest

from driftline.job_contracts import ContractError, TrainingResult, parse_message

RESULT = '{"model_name": "adult-income", "version": "7", "run_id": "r", "roc_auc": 0.93}'


def test_a_message_without_contract_version_is_version_one() -> None:
    """Jobs of the release before the contract wrote no version; their messages still read."""
    result = parse_message(TrainingResult, RESULT)
    assert (result.contract_version, result.version) == (1, "7")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (RESULT.replace("{", '{"contract_version": 2, ', 1), "contract_version"),
        (RESULT[:40], "message"),
        ('{"model_name": "m", "run_id": "r", "roc_auc": 0.9}', "version"),
        ("", "message"),
    ],
    ids=["newer-version", "cut-short", "missing-field", "empty"],
)
def test_a_message_that_does_not_parse_is_one_line_naming_where(text: str, where: str) -> None:
    with pytest.raises(ContractError) as refused:
        parse_message(TrainingResult, text)
    message = str(refused.value)
    assert message.startswith(f"TrainingResult does not parse: {where}"), message
    assert "\n" not in message
