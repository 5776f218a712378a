"""Which alerts an analysis raises: a condition alerts when it becomes true, not on
every hourly report while it stays true. Pure: report documents (dicts) in, alerts out."""

from __future__ import annotations

from dataclasses import dataclass, field

LIFECYCLE = "experiment.lifecycle"
ANALYSIS_FAILED = "analysis.failed"
SRM_FLAGGED = "srm.flagged"
GUARDRAIL_REGRESSED = "guardrail.regressed"
PRIMARY_SIGNIFICANT = "primary.significant"
EVENTS = (LIFECYCLE, ANALYSIS_FAILED, SRM_FLAGGED, GUARDRAIL_REGRESSED, PRIMARY_SIGNIFICANT)


@dataclass(frozen=True)
class Alert:
    event: str
    summary: str  # one sentence for a person: the email's subject, the payload's `summary`
    data: dict = field(default_factory=dict)


def _regressed(doc: dict | None) -> dict[tuple[str, str], dict]:
    found = {}
    for metric in (doc or {}).get("metrics", []):
        if metric.get("role") != "guardrail":
            continue
        for c in metric.get("comparisons", []):
            if (c.get("guardrail") or {}).get("verdict") == "regressed":
                found[(metric["metric"], c["variant"])] = {"metric": metric["metric"], "variant": c["variant"],
                                                           "relative_lift": c.get("relative_lift"),
                                                           "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"),
                                                           "margin": c["guardrail"].get("margin")}
    return found


def _significant(doc: dict | None) -> dict[str, dict]:
    doc = doc or {}
    inter = doc.get("interleaving")
    if doc.get("design") == "interleaving" and inter:
        if inter.get("significant"):
            return {"interleaving": {"metric": "interleaving preference", "winner": inter.get("winner"),
                                     "delta": inter.get("delta"), "ci_low": inter.get("ci_low"),
                                     "ci_high": inter.get("ci_high"), "p_value": inter.get("p_value")}}
        return {}
    found = {}
    for metric in doc.get("metrics", []):
        if metric.get("role") != "primary":
            continue
        for c in metric.get("comparisons", []):
            if c.get("significant"):
                found[c["variant"]] = {"metric": metric["metric"], "variant": c["variant"],
                                       "baseline": c.get("baseline"), "relative_lift": c.get("relative_lift"),
                                       "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"),
                                       "p_value": c.get("p_value")}
    return found


def _pct(x) -> str:
    return "—" if x is None else f"{x * 100:+.1f}%"


def from_reports(previous: dict | None, current: dict) -> list[Alert]:
    """The alerts `current` raises after `previous` (the experiment's last successful
    report of the same phase, or None)."""
    alerts = []
    srm = current.get("srm") or {}
    if srm.get("flagged") and not (previous or {}).get("srm", {}).get("flagged"):
        alerts.append(Alert(SRM_FLAGGED, f"Sample ratio mismatch (p = {srm.get('p_value', 0):.2g}): the split "
                                         "of users differs from the weights; results cannot be trusted until it is "
                                         "explained.",
                            {"p_value": srm.get("p_value"), "observed": srm.get("observed"),
                             "expected": srm.get("expected")}))
    before = _regressed(previous)
    for key, found in _regressed(current).items():
        if key not in before:
            alerts.append(Alert(GUARDRAIL_REGRESSED,
                                f"Guardrail {found['metric']} regressed in {found['variant']}: "
                                f"{_pct(found['relative_lift'])} [{_pct(found['ci_low'])}, {_pct(found['ci_high'])}].",
                                found))
    before_sig = _significant(previous)
    for key, found in _significant(current).items():
        if key not in before_sig:
            if key == "interleaving":
                summary = (f"The interleaving preference is significant: {found['winner']} wins, "
                           f"Δ {_pct(found['delta'])} [{_pct(found['ci_low'])}, {_pct(found['ci_high'])}].")
            else:
                summary = (f"{found['metric']} is significant for {found['variant']}: "
                           f"{_pct(found['relative_lift'])} [{_pct(found['ci_low'])}, {_pct(found['ci_high'])}].")
            alerts.append(Alert(PRIMARY_SIGNIFICANT, summary, found))
    return alerts
