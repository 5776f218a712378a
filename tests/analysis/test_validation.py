"""validate_stats is reproducible (the committed docs/validation.md is its output) and
writes its plots; the calibration itself is asserted in test_stats_*.py and reported
at full size in docs/validation.md."""

import pytest
from django.core.management import CommandError, call_command


def test_validate_stats_writes_the_same_report_twice_with_its_plots(tmp_path):
    first, second = tmp_path / "a" / "validation.md", tmp_path / "b" / "validation.md"
    call_command("validate_stats", "--runs", "20", "--out", str(first))
    call_command("validate_stats", "--runs", "20", "--out", str(second))
    assert first.read_text() == second.read_text()
    text = first.read_text()
    for section in ("A/A", "Known lifts", "Peeking", "Sample ratio mismatch", "CUPED", "Sequential testing: 20 looks",
                    "Variance reduction: CUPED vs CUPED++"):
        assert section in text
    for png in ("validation-aa-pvalues.png", "validation-power.png", "validation-sequential.png",
                "validation-cuped.png"):
        assert (first.parent / "images" / png).stat().st_size > 5_000
    with pytest.raises(CommandError):
        call_command("validate_stats", "--runs", "2", "--out", str(first))


def test_simulate_refuses_bad_options_in_one_line():
    for args in (["--lift", "treatment"], ["--lift", "treatment=-1"], ["--drop", "1.5"], ["--users", "0"]):
        with pytest.raises(CommandError) as err:
            call_command("simulate", "--api-key", "k", *args)
        assert "\n" not in str(err.value)
    with pytest.raises(CommandError, match="cannot reach"):
        call_command("simulate", "--api-key", "k", "--base-url", "http://127.0.0.1:9", "--users", "1")
