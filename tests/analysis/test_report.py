"""The typed report: built from the golden inputs it writes the very document the
analysis stored and served before it was typed (tests/analysis/golden/, generated from
that code), the CSV export and the dashboard read it as they read the document, and
any report survives JSON and back; documents stored by earlier versions still load."""

import json
import types
import typing
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.exports import report_csv
from analysis.report import MetricResult, Report, VariantStatistics, _Part
from dashboard import presenters
from tests.analysis.golden.generate import COMPUTED_AT, REPORT_ID, report_of, views_of

GOLDEN = sorted(Path(__file__).parent.joinpath("golden").glob("*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_same_document(got, want, where="report"):
    """Equal key for key in the same order, value types included (0 is not 0.0, null is
    not absent); floats to 1e-12, because the golden files were computed on one machine
    and a BLAS elsewhere may round the last bit differently."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for key in want:
            assert_same_document(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same_document(a, b, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), where
    else:
        assert got == want, where


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_the_typed_report_writes_the_document_the_analysis_wrote_before(path):
    golden = _load(path)
    report = report_of(golden["inputs"])
    assert_same_document(json.loads(json.dumps(report.to_json())), golden["report"])
    assert Report.from_json(json.loads(json.dumps(report.to_json()))) == report


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_a_stored_document_reads_back_to_itself_and_its_readers_show_what_they_showed(path):
    golden = _load(path)
    report = Report.from_json(golden["report"])
    assert json.dumps(report.to_json()) == json.dumps(golden["report"])  # byte for byte, key order included
    assert views_of(report) == golden["views"]  # the CSV and the dashboard's rows, charts and list summary


def test_the_golden_cases_cover_what_a_report_can_hold():
    reports = [Report.from_json(_load(p)["report"]) for p in GOLDEN]
    assert any(r.segments for r in reports) and any(r.series and r.series.days for r in reports)
    assert any(r.power is None for r in reports) and any(r.srm.flagged for r in reports)
    comparisons = [c for r in reports for m in r.metrics for c in m.comparisons]
    assert any(c.cuped for c in comparisons) and any(c.p_value is None for c in comparisons)
    assert any(m.cuped_available and any(v.cuped_mean is None for v in m.variants)
               for r in reports for m in r.metrics)
    assert {r.settings.correction for r in reports} == {"holm", "bh", "none"}


def test_documents_stored_by_earlier_versions_still_load():
    # Before the series said where it came from, and before cuped_available was stored.
    doc = _load(Path(__file__).parent / "golden" / "cuped.json")["report"]
    now = Report.from_json(doc)
    del doc["series"]["source"]
    for block in doc["metrics"]:
        del block["cuped_available"]
    old = Report.from_json(doc)
    assert old == replace(now, series=replace(now.series, source=None))
    assert [m.cuped_available for m in old.metrics] == [True, False, True, True]
    # What the dashboard tests store by hand: an SRM and nothing else.
    bare = Report.from_json({"srm": {"p_value": 0.5, "flagged": False}, "metrics": []})
    assert bare.srm.p_value == 0.5 and bare.srm.observed == {} and bare.metrics == () and bare.power is None
    assert presenters.primary_summary(bare) == [] and presenters.series_data(bare, False) == {"metric": None,
                                                                                              "lines": []}
    assert Report.from_json({}).srm.flagged is False


def test_cuped_means_need_cuped():
    report = Report.from_json(_load(Path(__file__).parent / "golden" / "plain.json")["report"])
    block = report.metrics[0]
    with pytest.raises(ValueError, match="CUPED means without CUPED"):
        replace(block, variants=(replace(block.variants[0], cuped_mean=0.1), *block.variants[1:]))


def test_undefined_numbers_are_none_in_the_report_as_null_in_the_document():
    v = VariantStatistics(variant="a", users=3, mean=float("nan"), std_error=float("inf"), numerator_sum=2.0,
                          denominator_sum=None)
    assert (v.mean, v.std_error) == (None, None)


# --- Any report survives JSON and back --------------------------------------------------


def _strategy(hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return st.one_of(*(_strategy(a) for a in args))
    if hint is type(None):
        return st.none()
    if origin is tuple:
        return st.lists(_strategy(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(st.text(max_size=6), _strategy(args[1]), max_size=3)
    simple = {float: st.floats(allow_nan=False, allow_infinity=False), bool: st.booleans(), str: st.text(max_size=8),
              int: st.integers(-2**53, 2**53), date: st.dates()}
    if hint in simple:
        return simple[hint]
    if hint is MetricResult:
        # CUPED means only where CUPED was available: the one rule of the document.
        without = st.lists(_builds(VariantStatistics, cuped_mean=st.none()), max_size=3).map(tuple)
        return st.one_of(_builds(hint, cuped_available=st.just(True)),
                         _builds(hint, cuped_available=st.just(False), variants=without))
    if issubclass(hint, _Part):
        return _builds(hint)
    raise TypeError(hint)


def _builds(cls, **given_fields):
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: given_fields[f.name] if f.name in given_fields else _strategy(hints[f.name])
                             for f in fields(cls)})

@settings(max_examples=60, deadline=None)
@given(_strategy(Report))
def test_any_report_survives_json_and_back(report):
    text = json.dumps(report.to_json())
    again = Report.from_json(json.loads(text))
    assert again == report
    assert json.dumps(again.to_json()) == text


# --- Stored and served through the database ----------------------------------------------


@pytest.mark.django_db
def test_a_stored_report_reads_back_to_the_document_stored_and_served(experimenter):
    from analysis.models import AnalysisReport, Metric
    from tests.analysis.conftest import add_events, add_exposures, clear_events, make_experiment
    from tests.conftest import as_user

    # 30 users a side: below the default minimum data, which would leave no sequential answer to carry.
    Metric.objects.update(min_users_per_variant=2, min_events_per_variant=0)
    now = datetime.now(UTC)
    exp, (control, treatment) = make_experiment("default", "typed", started_at=now - timedelta(days=2))
    add_exposures("default", exp, [(v, f"{v.key}{i}", now - timedelta(hours=30), {"platform": "ios"}, False)
                                   for v in (control, treatment) for i in range(30)])
    try:
        add_events("default", [(f"{v.key}{i}", kind, now - timedelta(hours=h))
                               for v in (control, treatment) for i in range(30)
                               for kind, h in (("impression", 20), ("impression", 2), ("click", 1 + i % 3))
                               if kind != "click" or i % (2 if v is control else 3)])
        client = as_user(experimenter)
        served = client.post(f"/api/v1/experiments/{exp.key}/analyze", {"segment_by": "platform"},
                             format="json").json()
        again = client.post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json").json()
    finally:
        clear_events("default")
    for body in (served, again):
        stored = AnalysisReport.objects.get(pk=body["report_id"]).results
        report = Report.from_json(stored)
        assert report.to_json() == stored
        assert {k: v for k, v in body.items() if k in stored} == json.loads(json.dumps(stored))
        assert [v.users for v in report.metrics[0].variants] == [30, 30]
    series = Report.from_json(again).series
    assert series.source == "incremental" and len(series.days) >= 2
    # The sequential answer runs on across the days carried over and into the report.
    ps = [d.comparisons[0].sequential_p_value for d in series.days if d.comparisons[0].sequential_p_value is not None]
    assert ps and ps == sorted(ps, reverse=True)
    primary = next(r for r in Report.from_json(again).metrics if r.role == "primary")
    assert primary.comparisons[0].sequential.p_value <= ps[-1]
    segmented = Report.from_json(served)
    rows = report_csv(segmented, REPORT_ID, COMPUTED_AT).splitlines()
    assert len(rows) == 1 + 2 * (len(segmented.metrics) + len(segmented.segments[0].metrics))
    assert sum(",ios," in row for row in rows) == 2 * len(segmented.segments[0].metrics) > 0
