"""What `make demo` prints at the end: every line labelled, nothing cut (scripts/demo.py)."""

from __future__ import annotations

from collections import Counter

from tests.manifests_script import load_script

demo = load_script("demo")

REFUSAL = (
    "driftline: error: version 3 does not beat champion 1 on roc_auc: 0.9247 vs 0.9305"
    " (improvement -0.0058 < 0.005)"
)
MOVE = {"previous_champion": "1", "champion": "3", "generation": 2, "comparison": None}


def test_a_refused_promotion_is_shown_whole_and_the_override_says_it_was_forced() -> None:
    facts = demo.promotion_facts(REFUSAL, MOVE)
    assert facts == [
        (
            "promote: the rule refused",
            "version 3 does not beat champion 1 on roc_auc: 0.9247 vs 0.9305"
            " (improvement -0.0058 < 0.005)",
        ),
        ("promote --force", "champion 1 -> 3: a manual override of the rule's refusal"),
    ]
    assert demo.promotion_facts(None, MOVE) == [("promote: the rule accepted", "champion 1 -> 3")]


def test_long_values_wrap_at_words_under_their_column_and_lose_nothing() -> None:
    facts = [("rollback", "champion 3 -> 1"), *demo.promotion_facts(REFUSAL, MOVE)]
    table = demo.facts_table(facts, width=72)
    assert table.splitlines() == [
        "  rollback                   champion 3 -> 1",
        "  promote: the rule refused  version 3 does not beat champion 1 on",
        "                             roc_auc: 0.9247 vs 0.9305 (improvement",
        "                             -0.0058 < 0.005)",
        "  promote --force            champion 1 -> 3: a manual override of the",
        "                             rule's refusal",
    ]
    assert all(len(line) <= 72 for line in table.splitlines())
    for _, value in facts:
        assert " ".join(value.split()) in " ".join(table.split())


def test_a_word_longer_than_the_line_is_kept_whole() -> None:
    path = "/very/long/" + "x" * 120
    assert demo.facts_table([("reports", path)]) == f"  reports  {path}"


def test_traffic_and_drift_lines_say_what_they_count() -> None:
    counts = Counter({"champion": 2700, "challenger": 300})
    assert demo.describe(counts) == (
        "3000 requests: champion answered 2700, challenger 300 (10.0%)"
    )
    report = {
        "drifted": True,
        "samples": {"current": 2500},
        "features": [
            {"name": "age", "psi": 1.234, "drifted": True},
            {"name": "sex", "psi": 0.01, "drifted": False},
            {"name": "relationship", "psi": 0.41, "drifted": True},
        ],
    }
    assert demo.verdict(report) == (
        "drift in the last 2500 logged rows: age (PSI 1.23), relationship (PSI 0.41)"
    )
    assert demo.verdict({"drifted": False, "samples": {"current": 2500}}) == (
        "no drift in the last 2500 logged rows"
    )
