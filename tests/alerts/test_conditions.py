"""An alert when a condition becomes true, not on every report while it stays true."""

from alerts import conditions as c


def _doc(srm=False, guardrail=None, significant=False):
    return {
        "srm": {"flagged": srm, "p_value": 1e-5 if srm else 0.4, "observed": {}, "expected": {}},
        "metrics": [
            {"metric": "closeup_ctr", "role": "primary", "comparisons": [
                {"variant": "treatment", "baseline": "control", "significant": significant, "relative_lift": 0.031,
                 "ci_low": 0.012, "ci_high": 0.05, "p_value": 0.002}]},
            {"metric": "hide_rate", "role": "guardrail", "comparisons": [
                {"variant": "treatment", "significant": False, "relative_lift": 0.08, "ci_low": 0.03,
                 "ci_high": 0.13, "guardrail": {"verdict": guardrail or "within_margin", "margin": 0.02}}]},
        ],
    }


def test_each_condition_alerts_the_first_time_it_is_true():
    alerts = c.from_reports(None, _doc(srm=True, guardrail="regressed", significant=True))
    assert [a.event for a in alerts] == [c.SRM_FLAGGED, c.GUARDRAIL_REGRESSED, c.PRIMARY_SIGNIFICANT]
    assert alerts[1].summary == "Guardrail hide_rate regressed in treatment: +8.0% [+3.0%, +13.0%]."
    assert alerts[2].data["relative_lift"] == 0.031


def test_no_alert_while_a_condition_stays_true_and_again_once_it_comes_back():
    flagged = _doc(srm=True, guardrail="regressed", significant=True)
    assert c.from_reports(flagged, flagged) == []
    assert c.from_reports(_doc(), flagged) != []
    assert c.from_reports(flagged, _doc()) == []


def test_an_inconclusive_guardrail_is_not_a_regression():
    assert c.from_reports(None, _doc(guardrail="inconclusive")) == []


def test_interleaving_significance_is_the_primary_verdict():
    doc = {"design": "interleaving", "srm": {"flagged": False}, "metrics": [],
           "interleaving": {"significant": True, "winner": "ranker", "delta": 0.68, "ci_low": 0.63, "ci_high": 0.74,
                            "p_value": 1e-9}}
    (alert,) = c.from_reports(None, doc)
    assert alert.event == c.PRIMARY_SIGNIFICANT and alert.data["winner"] == "ranker"
    assert c.from_reports(doc, doc) == []
