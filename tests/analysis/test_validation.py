"""validate_stats is reproducible (the committed docs/validation.md is its output) and
writes its plots; the calibration itself is asserted in test_stats_*.py and reported
at full size in docs/validation.md."""

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from analysis import validation


def test_validate_stats_writes_the_same_report_twice_with_its_plots(tmp_path):
    first, second = tmp_path / "a" / "validation.md", tmp_path / "b" / "validation.md"
    call_command("validate_stats", "--runs", "20", "--out", str(first))
    call_command("validate_stats", "--runs", "20", "--out", str(second))
    assert first.read_text() == second.read_text()
    text = first.read_text()
    for section in ("A/A", "Known lifts", "Peeking", "Sample ratio mismatch", "CUPED", "Sequential testing: 20 looks",
                    "Variance reduction: CUPED vs CUPED++",
                    "Power for any split", "Interleaving vs A/B"):
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


def test_the_power_for_any_split_section_measures_what_the_calculator_promises_in_a_small_run():
    # 1,000 runs hold every row within 3 points (docs/validation.md); 300 runs carry about
    # 2.3 points of noise, so this small one is held within 7.
    section = validation.allocation_section(np.random.default_rng(3), 300, lambda total, desc: validation._NoBar())
    assert [row[0] for row in section.rows] == ["50/50", "90/10", "three arms, treatment 1", "three arms, treatment 2"]
    for row in section.rows:
        promised, measured = (float(x.rstrip("%")) for x in row[2:4])
        assert promised == pytest.approx(80, abs=0.6)
        assert abs(measured - promised) <= 7, row
    # The 90/10 split's small arm needs the users the equal-split calculator never asked for.
    assert section.rows[1][5] == "100.0%"
