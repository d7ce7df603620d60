"""What `make demo` prints at the end: every line labelled, nothing cut (scripts/demo.py)."""

from __future__ import annotations

from collections import Counter

from tests.manifests_script import load_script

demo = load_script("demo")

REFUSAL = (
    "driftline: error: version 3 does not beat champion 1 on roc_auc: 0.9247 vs 0.9305"
    " paired on 1800 recent rows (improvement -0.0058, 95% interval -0.0090 to -0.0026: lower"
    " bound not above 0.005)"
)
COMPARISON = {"metric": "roc_auc", "champion": 0.9247, "challenger": 0.9361, "low": 0.0061,
              "high": 0.0167, "rows": 1800, "dataset": "recent"}  # fmt: skip
MOVE = {"previous_champion": "1", "champion": "3", "generation": 2, "comparison": COMPARISON}


def test_the_rules_verdict_is_shown_whole_either_way_and_never_overridden() -> None:
    assert demo.promotion_facts({"error": REFUSAL}) == [
        (
            "promote: the rule refused",
            "version 3 does not beat champion 1 on roc_auc: 0.9247 vs 0.9305 paired on 1800"
            " recent rows (improvement -0.0058, 95% interval -0.0090 to -0.0026: lower bound"
            " not above 0.005)",
        )
    ]
    assert demo.promotion_facts(MOVE) == [
        (
            "promote: the rule accepted",
            "champion 1 -> 3: roc_auc 0.9247 -> 0.9361, 95% +0.0061 to +0.0167 on 1800 recent rows",
        )
    ]


def test_long_values_wrap_at_words_under_their_column_and_lose_nothing() -> None:
    facts = [("rollback", "champion 3 -> 1"), *demo.promotion_facts({"error": REFUSAL})]
    table = demo.facts_table(facts, width=72)
    assert table.splitlines()[:3] == [
        "  rollback                   champion 3 -> 1",
        "  promote: the rule refused  version 3 does not beat champion 1 on",
        "                             roc_auc: 0.9247 vs 0.9305 paired on 1800",
    ]
    assert all(len(line) <= 72 for line in table.splitlines())
    for _, value in facts:
        assert " ".join(value.split()) in " ".join(table.split())


def test_performance_and_retraining_lines_give_figures_and_intervals() -> None:
    report = {"groups": [
        {"version": "1", "variant": "champion", "labelled": 2700, "estimated_labelled":
         {"roc_auc": 0.9301}, "realised": {"roc_auc": {"value": 0.9262, "low": 0.915,
                                                      "high": 0.9374}}},
        {"version": "2", "variant": "challenger", "labelled": 40, "realised": None},
    ]}  # fmt: skip
    assert demo.performance_facts(report) == [
        ("performance v1 champion", "AUC-ROC 0.9262 (95% 0.9150 to 0.9374) on 2700 labelled"
         " requests; estimated from the probabilities alone 0.9301"),
        ("performance v2 challenger", "40 labels: not enough to measure"),
    ]  # fmt: skip
    retrain = {"retrained": True, "version": "3",
               "recent": {"train_rows": 4200, "holdout_rows": 1800},
               "comparison": {"datasets": {"recent": {"rows": 1800, "metrics": {"roc_auc": {
                   "champion": 0.85, "challenger": 0.87, "difference": 0.02, "low": 0.01,
                   "high": 0.03}}}}}}  # fmt: skip
    facts = dict(demo.retrain_facts(retrain))
    assert facts["trained on"] == (
        "Adult plus 4200 recent labelled requests; the newest 1800 held out"
    )
    assert facts["vs champion, recent rows"] == (
        "AUC-ROC 0.8500 -> 0.8700 on the same 1800 rows: +0.0200 (95% +0.0100 to +0.0300)"
    )


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
