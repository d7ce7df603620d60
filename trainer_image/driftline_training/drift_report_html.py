"""The drift report as one self-contained HTML page (inline CSS bars; no scripts, no fetches).

An overview table of every feature ordered by PSI, then one table per feature and one for the
predictions with the reference and current share of each bin or category side by side. With a
performance rule, a section on realised and estimated performance per version and variant.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from driftline.drift_report import BinShare, DriftReport, FeatureDrift, PredictionDrift, window_text
from driftline.job_contracts import PerformanceSummary

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; } h3 { margin: 1.4rem 0 .4rem; }
table { border-collapse: collapse; margin: .4rem 0; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: .3rem; color: #fff; }
.drift, .breach { background: #c0392b; } .no_drift, .ok { background: #27ae60; }
.insufficient_data, .insufficient_labels, .skipped { background: #7f8c8d; }
.bars { width: 22rem; } .bar { height: .55rem; margin: 1px 0; }
.bar.reference { background: #7f8c8d; } .bar.current { background: #2980b9; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; }
.muted { color: #777; }
"""


def render_html(report: DriftReport, performance: PerformanceSummary | None = None) -> str:
    """The whole page for ``report`` (and ``performance``, when the check judged it)."""
    status = report.status.value
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Driftline drift report</title>",
        f"<style>{STYLE}</style></head><body>",
        f'<h1>Drift report <span class="badge {status}">{escape(status)}</span></h1>',
        f"<p>{escape(report.reason)}</p>",
        _facts(report),
    ]
    if report.features:
        parts += ["<h2>Features</h2>", _overview(report.ranked_features())]
    parts += ["<h2>Predictions</h2>", _prediction(report.prediction)]
    if performance is not None:
        parts += ["<h2>Performance</h2>", _performance(performance)]
    if report.features:
        parts.append(
            '<h2>Shares per bin</h2><p class="legend">'
            '<span class="bar reference"></span>reference (baseline)'
            '<span class="bar current"></span>current window</p>'
        )
        parts += [_feature_section(f) for f in report.ranked_features()]
    parts.append("</body></html>")
    return "\n".join(parts)


def _facts(report: DriftReport) -> str:
    t = report.thresholds
    rows = [
        ("samples", ", ".join(f"{k} {v:,}" for k, v in report.samples.items())),
        (
            "rule",
            f"feature drifts when PSI > {t.psi} and Benjamini-Hochberg adjusted p <= {t.p_value};"
            f" predictions drift when PSI > {t.prediction_psi} and KS p <= {t.p_value};"
            f" fewer than {t.min_samples} rows is insufficient data",
        ),
        *report.source.items(),
        *([("window", window_text(report.window))] if report.window else []),
    ]
    return _table(["", ""], ([escape(str(k)), escape(str(v))] for k, v in rows))


def _overview(features: list[FeatureDrift]) -> str:
    rows = (
        [
            f'<a href="#{_anchor(f.name)}">{escape(f.name)}</a>',
            escape(f.kind.value),
            escape(f.test),
            _number(f.statistic),
            _number(f.psi),
            _number(f.p_value),
            _number(f.p_adjusted),
            _decision(f.drifted),
            escape("; ".join(f"{k}: {v}" for k, v in f.reference.items())),
        ]
        for f in features
    )
    header = ["feature", "kind", "test", "statistic", "PSI", "p", "p (BH)", "decision"]
    return _table([*header, "reference"], rows)


def _prediction(prediction: PredictionDrift) -> str:
    if not prediction.checked:
        return f'<p><span class="badge skipped">not checked</span> {escape(prediction.note)}</p>'
    summary = _table(
        ["test", "statistic", "PSI", "p", "decision", "reference"],
        [
            [
                escape(prediction.test),
                _number(prediction.statistic),
                _number(prediction.psi),
                _number(prediction.p_value),
                _decision(bool(prediction.drifted)),
                escape("; ".join(f"{k}: {v}" for k, v in prediction.reference.items())),
            ]
        ],
    )
    return summary + _bins(prediction.bins)


def _performance(summary: PerformanceSummary) -> str:
    status = summary.status
    judged = f'<p><span class="badge {status}">{escape(status)}</span> {escape(summary.reason)}</p>'
    rule = _table(
        ["metric", "version", "realised", "95% interval", "limit", "training test score"],
        [
            [
                escape(summary.metric),
                escape(summary.version),
                _number(summary.value),
                f"{_number(summary.low)} .. {_number(summary.high)}",
                _number(summary.limit),
                _number(summary.reference),
            ]
        ],
    )
    variants = _table(
        ["version", "variant", "served", "labelled", "coverage", "AUC", "AUC (CBPE)",
         "accuracy", "accuracy (CBPE)"],
        [
            [
                escape(v.version), escape(v.variant), f"{v.served:,}", f"{v.labelled:,}",
                f"{v.coverage:.1%}", _number(v.roc_auc), _number(v.roc_auc_estimated),
                _number(v.accuracy), _number(v.accuracy_estimated),
            ]
            for v in summary.variants
        ],
    )  # fmt: skip
    legend = (
        '<p class="legend muted">Realised figures need labels (POST /feedback); CBPE estimates'
        " them from the predicted probabilities alone, over every served row.</p>"
    )
    return judged + rule + variants + legend


def _feature_section(feature: FeatureDrift) -> str:
    details = (
        f"not testable: {escape(feature.note)}"
        if feature.note
        else f"PSI {_number(feature.psi)}, {escape(feature.test)} p {_number(feature.p_value)}"
        f" (adjusted {_number(feature.p_adjusted)})"
    )
    missing = feature.missing
    if missing is not None:
        details += (
            f"; missing share {missing.reference:.1%} -> {missing.current:.1%}, p"
            f" {_number(missing.p_value)} (adjusted {_number(missing.p_adjusted)})"
        )
    return (
        f'<section id="{_anchor(feature.name)}"><h3>{escape(feature.name)} '
        f"{_decision(feature.drifted)}</h3>"
        f'<p class="muted">{details}, {feature.current_count:,} current values</p>'
        f"{_bins(feature.bins)}</section>"
    )


def _bins(bins: Iterable[BinShare]) -> str:
    rows = list(bins)
    widest = max((max(b.reference, b.current) for b in rows), default=0.0) or 1.0
    body = (
        [
            escape(b.label),
            f"{b.reference:.1%}",
            f"{b.current:.1%}",
            '<div class="bars">'
            f'<div class="bar reference" style="width:{100 * b.reference / widest:.1f}%"></div>'
            f'<div class="bar current" style="width:{100 * b.current / widest:.1f}%"></div>'
            "</div>",
        ]
        for b in rows
    )
    return _table(["bin", "reference", "current", ""], body)


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _cell(content: str) -> str:
    numeric = content[:1].isdigit() or content.endswith("%")
    return f'<td class="num">{content}</td>' if numeric else f"<td>{content}</td>"


def _decision(drifted: bool) -> str:
    return (
        '<span class="badge drift">drift</span>'
        if drifted
        else '<span class="badge no_drift">ok</span>'
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _anchor(name: str) -> str:
    return "f-" + "".join(c if c.isalnum() else "-" for c in name)
