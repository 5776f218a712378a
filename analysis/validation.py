"""Statistical validation by simulation: the platform's error rates against a known
ground truth, computed with the production analysis code (`analysis.results`), no
Django import. `python manage.py validate_stats` runs it and writes docs/validation.md.

The simulated user (per arm, per run):
    activity a ~ Gamma(2, 6)          impressions ~ Poisson(a), before and after exposure
    ctr c ~ Beta(2, 20)               clicks ~ Binomial(impressions, c · lift)
    save rate s ~ Gamma(1.5, 2)       saves ~ Poisson(s), before and after
    engaged = clicks + saves > 0
Metrics: closeup_ctr (ratio), saves_per_user (mean), engaged_users (proportion), each
with its pre-exposure twin as the CUPED covariate. For saves, Cov(pre, post) = Var(s),
so the true correlation is ρ = θ/(1 + θ) with θ = 2: ρ² = 4/9.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from analysis import interleaving_validation as IV
from analysis import results as R
from analysis.metric_kinds.registry import metric_value
from analysis.report import AnalysisSettings, Comparison
from analysis.stats.frequentist import compare
from analysis.stats.moments import Moments
from analysis.stats.power import comparison_powers, power_at, users_needed, users_per_variant
from analysis.stats.sequential import SequentialResult, confidence_sequence, msprt, running
from analysis.stats.srm import sample_ratio_mismatch

SAVE_SHAPE, SAVE_SCALE = 1.5, 2.0
RHO2_SAVES = (SAVE_SCALE / (1 + SAVE_SCALE)) ** 2
METRICS = [
    R.MetricInfo("closeup_ctr", "Closeup CTR", "ratio", "higher", "primary", (0, 1), (4, 5)),
    R.MetricInfo("saves_per_user", "Saves per user", "mean", "higher", "secondary", (2,), (6,)),
    R.MetricInfo("engaged_users", "Engaged users", "proportion", "higher", "secondary", (3,), (7,)),
]
VARIANTS = [R.VariantInfo(1, "control", 50, True), R.VariantInfo(2, "treatment", 50, False)]


def simulate_arm(rng, n: int, ctr_lift: float = 1.0) -> Moments:
    """The moments of n simulated users' 8 per-user variables (post, then pre)."""
    a = rng.gamma(2.0, 6.0, n)
    c = rng.beta(2.0, 20.0, n)
    s = rng.gamma(SAVE_SHAPE, SAVE_SCALE, n)
    cols = []
    for lift in (ctr_lift, 1.0):  # post (with the treatment's lift), then pre
        imp = rng.poisson(a)
        clk = rng.binomial(imp, np.minimum(1.0, c * lift))
        sav = rng.poisson(s)
        cols.append((clk, imp, sav, ((clk + sav) > 0).astype(float)))
    return Moments.from_data(np.vstack([*cols[0], *cols[1]]).astype(float))


def analyse(control: Moments, treatment: Moments, settings: AnalysisSettings) -> dict[str, Comparison]:
    """Production code: each metric's comparison as the report would hold it."""
    moments = {1: control, 2: treatment}
    return {m.key: R.metric_result(m, VARIANTS, moments, settings).comparisons[0] for m in METRICS}


@dataclass
class Section:
    title: str
    rows: list[list] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)
    text: str = ""
    plot: str | None = None
    summary: list[str] = field(default_factory=list)  # lines the command prints, for people at a terminal


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def aa_runs(rng, runs: int, n: int, progress=lambda: None) -> dict:
    settings = AnalysisSettings(cuped=True)
    p = {m.key: [] for m in METRICS}
    cuped_p = {m.key: [] for m in METRICS}
    lifts = {m.key: ([], []) for m in METRICS}
    for _ in range(runs):
        res = analyse(simulate_arm(rng, n), simulate_arm(rng, n), settings)
        for key, c in res.items():
            p[key].append(c.p_value)
            if c.cuped:
                cuped_p[key].append(c.cuped.p_value)
                lifts[key][0].append(c.absolute_lift)
                lifts[key][1].append(c.cuped.absolute_lift)
        progress()
    return {"p": p, "cuped_p": cuped_p, "lifts": lifts}


def lift_runs(rng, runs: int, n: int, lift: float, truth: float, progress=lambda: None) -> dict:
    """`lift` multiplies each user's click probability; `truth` is what that does to
    the ratio of totals, which the CI must cover."""
    settings = AnalysisSettings(cuped=False)
    covered = significant = 0
    for _ in range(runs):
        c = analyse(simulate_arm(rng, n), simulate_arm(rng, n, 1 + lift), settings)["closeup_ctr"]
        covered += c.ci_low <= truth <= c.ci_high
        significant += c.p_value < 0.05
        progress()
    return {"coverage": covered / runs, "power": significant / runs}


def ctr_truth(rng, lift: float, n: int = 400_000) -> tuple[float, float, float]:
    """The true relative CTR lift (the lift is on each user's click probability, so the
    ratio of totals moves by the impression-weighted mean of the capped lift) and the
    control's per-user delta-method variance, from one large sample."""
    a = rng.gamma(2.0, 6.0, n)
    c = rng.beta(2.0, 20.0, n)
    true = float(np.sum(a * np.minimum(1.0, c * (1 + lift))) / np.sum(a * c) - 1)
    value = metric_value("ratio", simulate_arm(rng, n).select([0, 1]))
    return true, value.unit_variance, value.value


def sequential_runs(rng, runs: int, days: int, per_day: int, tau: float, progress=lambda: None) -> dict:
    seq_by_day = np.zeros(days)
    naive_by_day = np.zeros(days)
    for _ in range(runs):
        totals = [None, None]
        seq = naive = False
        so_far = None
        for d in range(days):
            for arm in (0, 1):
                m = simulate_arm(rng, per_day).select([0, 1])
                totals[arm] = m if totals[arm] is None else totals[arm] + m
            r = compare(metric_value("ratio", totals[1]), metric_value("ratio", totals[0]))
            so_far = running(so_far, confidence_sequence(r.relative_lift, r.relative_se**2, tau))
            seq = so_far.p_value < 0.05
            naive |= r.p_value < 0.05
            seq_by_day[d] += seq
            naive_by_day[d] += naive
        progress()
    return {"sequential": seq_by_day / runs, "naive": naive_by_day / runs}


def _ctr_day(rng, n: int, lift: float) -> Moments:
    """One day's n new users' (clicks, impressions): the CTR of simulate_arm, faster."""
    a = rng.gamma(2.0, 6.0, n)
    c = rng.beta(2.0, 20.0, n)
    imp = rng.poisson(a)
    return Moments.from_data(np.vstack([rng.binomial(imp, np.minimum(1.0, c * lift)), imp]).astype(float))


def looks_runs(rng, runs: int, looks: int, per_look: int, lift: float, mde: float, progress=lambda: None) -> dict:
    """Experiments read `looks` times (per_look new users per arm each time) by the
    fixed-horizon test (once, at the end, and peeked at every look), the fixed-τ mSPRT
    (τ = mde, p = 1/Λ of each look) and the tuned confidence sequence with running values.
    Counts: rejected at some look, and shown significant at the last look."""
    keys = ("fixed", "peeked", "msprt_any", "msprt_last", "tuned_any", "tuned_last", "flipped_msprt")
    out = dict.fromkeys(keys, 0)
    for _ in range(runs):
        totals = [None, None]
        so_far: SequentialResult | None = None
        old_any = new_any = peeked = False
        for _look in range(looks):
            for arm, arm_lift in ((0, 1.0), (1, 1.0 + lift)):
                m = _ctr_day(rng, per_look, arm_lift)
                totals[arm] = m if totals[arm] is None else totals[arm] + m
            r = compare(metric_value("ratio", totals[1]), metric_value("ratio", totals[0]))
            old = msprt(r.relative_lift, r.relative_se**2, mde)
            so_far = running(so_far, confidence_sequence(r.relative_lift, r.relative_se**2, mde))
            old_any |= old.p_value < 0.05
            new_any |= so_far.p_value < 0.05
            peeked |= r.p_value < 0.05
        out["fixed"] += r.p_value < 0.05
        out["peeked"] += peeked
        out["msprt_any"] += old_any
        out["msprt_last"] += old.p_value < 0.05
        out["flipped_msprt"] += old_any and not old.p_value < 0.05
        out["tuned_any"] += new_any
        out["tuned_last"] += so_far.p_value < 0.05
        progress()
    return {k: v / runs for k, v in out.items()}


# Heavy tails (the capping section): per-user values ~ LogNormal(0, σ), the treatment
# multiplying each user's value by 1 + lift; capped at the 99.9th percentile.
HEAVY_SIGMA, HEAVY_N, HEAVY_LIFT, CAP_PERCENTILE = 2.0, 5_000, 0.10, 99.9
HEAVY_METRIC = R.MetricInfo("revenue_per_user", "Revenue per user", "mean", "higher", "primary", (0,))


def winsorize(arms: list[np.ndarray], percentile: float) -> tuple[list[np.ndarray], float | None]:
    """Each arm's values at most the cap: the percentile of the pooled values above 0,
    interpolated linearly (numpy's default, PostgreSQL's percentile_cont), as the SQL
    of analysis/sufficient_statistics.py computes it."""
    pooled = np.concatenate(arms)
    positive = pooled[pooled > 0]
    if positive.size == 0:
        return arms, None
    cap = float(np.percentile(positive, percentile))
    return [np.minimum(a, cap) for a in arms], cap


def capping_runs(rng, runs: int, n: int, lift: float, sigma: float = HEAVY_SIGMA,
                 percentile: float = CAP_PERCENTILE, progress=lambda: None) -> dict:
    """Share of runs significant at 0.05, without and with capping, on lognormal values."""
    settings = AnalysisSettings(cuped=False)
    hits = {"plain": 0, "capped": 0}

    def significant(control, treatment) -> bool:
        moments = {1: Moments.from_data(control), 2: Moments.from_data(treatment)}
        p = R.metric_result(HEAVY_METRIC, VARIANTS, moments, settings).comparisons[0].p_value
        return p is not None and p < 0.05

    for _ in range(runs):
        control = rng.lognormal(0.0, sigma, n)
        treatment = rng.lognormal(0.0, sigma, n) * (1 + lift)
        hits["plain"] += significant(control, treatment)
        hits["capped"] += significant(*winsorize([control, treatment], percentile)[0])
        progress()
    return {k: v / runs for k, v in hits.items()}


# Guardrails (the non-inferiority section): hides per user ~ Poisson(1), lower is better,
# a 2% margin; the treatment multiplies the rate by `harm`.
GUARD_N, GUARD_MARGIN = 20_000, 0.02
GUARD_METRIC = R.MetricInfo("hides_per_user", "Hides per user", "mean", "lower", "guardrail", (0,),
                            guardrail_margin=GUARD_MARGIN)


def guardrail_runs(rng, runs: int, n: int, harm: float, progress=lambda: None) -> dict:
    """Share of runs per guardrail verdict, through the production path (corrections included)."""
    settings = AnalysisSettings(cuped=False)
    counts = {"within_margin": 0, "regressed": 0, "inconclusive": 0}
    for _ in range(runs):
        moments = {1: Moments.from_data(rng.poisson(1.0, n).astype(float)),
                   2: Moments.from_data(rng.poisson(harm, n).astype(float))}
        result = R.corrected_results(
            lambda levels, m=moments: [R.metric_result(GUARD_METRIC, VARIANTS, m, settings, levels and levels[0])],
            settings)
        counts[result[0].comparisons[0].guardrail.verdict] += 1
        progress()
    return {k: v / runs for k, v in counts.items()}


# CUPED vs CUPED++ (the variance-reduction section): per user an activity level a ~ Gamma(2, 1);
# a share of new users with nothing before exposure; saves and clicks before exposure
# ~ Poisson(1.5a) and Poisson(2.5a) (0 for a new user); saves after ~ Poisson(a), or
# Poisson(NEW_LEVEL) for a new user. Both pre-period counts measure a with noise, so the
# clicks add to the saves' own; the "any pre-period event" indicator separates new users.
PP_N, PP_NEW_SHARE, PP_NEW_LEVEL = 2_000, 0.3, 2.0
PP_SINGLE = R.MetricInfo("saves_per_user", "Saves per user", "mean", "higher", "primary", (0,), (1,))
PP_MULTI = R.MetricInfo("saves_per_user", "Saves per user", "mean", "higher", "primary", (0,), (1,),
                        covariates=(("clicks_per_user", "mean", (2,)), ("any_pre_period_event", "mean", (3,))))


def cuped_pp_users(rng, n: int) -> np.ndarray:
    """n simulated users' (post saves, pre saves, pre clicks, any pre-period event)."""
    a = rng.gamma(2.0, 1.0, n)
    new = rng.random(n) < PP_NEW_SHARE
    pre_saves = np.where(new, 0, rng.poisson(1.5 * a))
    pre_clicks = np.where(new, 0, rng.poisson(2.5 * a))
    post = rng.poisson(np.where(new, PP_NEW_LEVEL, a))
    return np.vstack([post, pre_saves, pre_clicks, (pre_saves + pre_clicks) > 0]).astype(float)


def cuped_pp_theory(rng, n: int = 400_000) -> tuple[float, float]:
    """The share of the per-user variance each adjustment removes, from one large sample:
    the R² of post on the saves' pre-period count, and on all three covariates."""
    users = cuped_pp_users(rng, n)
    post = users[0]

    def r2(columns) -> float:
        x = np.column_stack([np.ones(n), *columns])
        resid = post - x @ np.linalg.lstsq(x, post, rcond=None)[0]
        return float(1 - resid.var() / post.var())

    return r2([users[1]]), r2(users[1:])


def cuped_pp_runs(rng, runs: int, n: int, progress=lambda: None) -> dict:
    """A/A experiments analysed unadjusted, with CUPED and with CUPED++ (production code):
    each one's absolute lift and p-value."""
    settings = AnalysisSettings(cuped=True)
    out = {k: [] for k in ("raw", "cuped", "cuped_pp", "p_raw", "p_cuped", "p_cuped_pp")}
    for _ in range(runs):
        moments = {1: Moments.from_data(cuped_pp_users(rng, n)), 2: Moments.from_data(cuped_pp_users(rng, n))}
        single = R.metric_result(PP_SINGLE, VARIANTS, moments, settings).comparisons[0]
        multi = R.metric_result(PP_MULTI, VARIANTS, moments, settings).comparisons[0]
        out["raw"].append(single.absolute_lift)
        out["p_raw"].append(single.p_value)
        out["cuped"].append(single.cuped.absolute_lift)
        out["p_cuped"].append(single.cuped.p_value)
        out["cuped_pp"].append(multi.cuped.absolute_lift)
        out["p_cuped_pp"].append(multi.cuped.p_value)
        progress()
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def srm_runs(rng, runs: int, per_arm: int, drop: float) -> float:
    flagged = 0
    for _ in range(runs):
        n = int(rng.binomial(2 * per_arm, 0.5))
        treatment = int(rng.binomial(2 * per_arm - n, 1 - drop)) if drop else 2 * per_arm - n
        flagged += sample_ratio_mismatch({"control": n, "treatment": treatment},
                                         {"control": 50, "treatment": 50}).flagged
    return flagged / runs


def run(runs: int = 1000, seed: int = 20261126, out_dir=None, progress_factory=None) -> list[Section]:
    """Every check; returns the report's sections (and writes PNG plots to out_dir)."""
    import matplotlib  # only the validation report draws: the app itself never needs matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    bar = progress_factory or (lambda total, desc: _NoBar())
    aa_section, aa = _aa_section(rng, runs, bar, plt, out_dir)
    sections = [aa_section, _lift_section(rng, runs, bar, plt, out_dir),
                _sequential_section(rng, runs, bar, plt, out_dir), _srm_section(rng, runs),
                _cuped_section(aa, plt, out_dir), _capping_section(rng, runs, bar), _guardrail_section(rng, runs, bar),
                # its own stream, so that adding it moved no other section's numbers
                _looks_section(np.random.default_rng([seed, 16]), runs, bar),
                _cuped_pp_section(np.random.default_rng([seed, 17]), runs, bar),
                allocation_section(np.random.default_rng([seed, 17]), runs, bar),
                interleaving_section(np.random.default_rng([seed, 18]), runs, bar)]
    plt.close("all")
    return sections


def _table(header: str, rows: list[list[str]]) -> str:
    columns = header.count("|") - 1
    return header + "\n|" + "---|" * columns + "\n" + "\n".join("| " + " | ".join(r) + " |" for r in rows)


def _aa_section(rng, runs, bar, plt, out_dir) -> tuple[Section, dict]:
    """A/A: false positives and uniform p-values."""
    n_aa = 2_000
    aa_count = 4 * runs
    with bar(aa_count, "A/A experiments") as b:
        aa = aa_runs(rng, aa_count, n_aa, b.update)
    s = Section(f"A/A: false positive rate at α = 0.05 ({aa_count:,} experiments, {n_aa:,} users per arm)")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, m in zip(axes, METRICS, strict=True):
        p = np.array(aa["p"][m.key])
        fpr = float(np.mean(p < 0.05))
        ks = stats.kstest(p, "uniform").pvalue
        cup = float(np.mean(np.array(aa["cuped_p"][m.key]) < 0.05))
        ok = 0.04 <= fpr <= 0.06
        s.rows.append([m.key, m.kind, f"{fpr:.2%}", f"{cup:.2%}", f"{ks:.3f}", _mark(ok)])
        s.passed.append(ok)
        ax.hist(p, bins=20, range=(0, 1), color="#0b4f9c")
        ax.axhline(len(p) / 20, color="#a4161a", linestyle="--")
        ax.set_title(f"{m.key}: FPR {fpr:.1%}")
        ax.set_xlabel("p-value")
    s.text = _table("| metric | kind | false positive rate | with CUPED | KS p (uniform p-values) | in [4%, 6%] |",
                    s.rows)
    s.plot = _save(fig, out_dir, "validation-aa-pvalues.png")
    return s, aa


def _lift_section(rng, runs, bar, plt, out_dir) -> Section:
    """Known lifts on CTR: coverage and power against the calculator."""
    true_lifts = {}
    unit_var = base = None
    for lift in (0.01, 0.02, 0.05):
        true_lifts[lift], unit_var, base = ctr_truth(rng, lift)
    n_lift = users_per_variant(true_lifts[0.05], base, unit_var, 0.05, 0.8)
    s = Section(f"Known lifts on CTR: coverage and power ({runs:,} experiments each, {n_lift:,} users per arm, "
                "sized by the calculator for 80% power at the 5% lift)")
    measured, predicted = [], []
    for lift in (0.01, 0.02, 0.05):
        truth = true_lifts[lift]
        with bar(runs, f"lift {lift:.0%}") as b:
            r = lift_runs(rng, runs, n_lift, lift, truth, b.update)
        covered = r["coverage"]
        expect = power_at(truth, n_lift, base, unit_var)
        ok_cov, ok_pow = 0.935 <= covered <= 0.965, abs(r["power"] - expect) <= 0.03
        s.rows.append([f"{lift:.0%}", f"{truth:.3%}", f"{covered:.1%}", _mark(ok_cov), f"{r['power']:.1%}",
                       f"{expect:.1%}", _mark(ok_pow)])
        s.passed += [ok_cov, ok_pow]
        measured.append(r["power"])
        predicted.append(expect)
    s.text = _table("| lift on each user's click probability | true lift of CTR | 95% CI coverage | "
                    "in [93.5%, 96.5%] | power measured | power predicted | within 3 points |", s.rows)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = np.arange(3)
    ax.bar(x - 0.2, measured, 0.4, label="measured", color="#0b4f9c")
    ax.bar(x + 0.2, predicted, 0.4, label="calculator", color="#b35900")
    ax.set_xticks(x, ["1%", "2%", "5%"])
    ax.set_ylabel("power")
    ax.legend()
    s.plot = _save(fig, out_dir, "validation-power.png")
    return s


def _sequential_section(rng, runs, bar, plt, out_dir) -> Section:
    """Sequential testing with a daily look over 14 days."""
    days, per_day = 14, 500
    with bar(runs, "sequential A/A") as b:
        seq = sequential_runs(rng, runs, days, per_day, tau=0.02, progress=b.update)
    ok = seq["sequential"][-1] <= 0.05
    s = Section(f"Peeking: A/A with a look every day for {days} days ({runs:,} experiments, {per_day} new users "
                "per arm a day), stopping at the first significant look")
    s.rows = [["always-valid (confidence sequence, running p)", f"{seq['sequential'][-1]:.1%}", _mark(ok)],
              ["fixed-horizon t-test, peeked at daily", f"{seq['naive'][-1]:.1%}", "(inflates, as expected)"]]
    s.passed.append(ok)
    s.text = _table("| test | false positive rate after 14 looks | at most 5% |", s.rows)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(range(1, days + 1), seq["naive"], marker="o", label="fixed horizon, peeked", color="#a4161a")
    ax.plot(range(1, days + 1), seq["sequential"], marker="o", label="always valid", color="#0b4f9c")
    ax.axhline(0.05, color="#5c5c5c", linestyle="--")
    ax.set_xlabel("day of the first significant look")
    ax.set_ylabel("false positive rate")
    ax.legend()
    s.plot = _save(fig, out_dir, "validation-sequential.png")
    return s


def _looks_section(rng, runs, bar) -> Section:
    """Twenty looks at the planned size: the tuned confidence sequence against the fixed-τ
    mSPRT and the fixed-horizon test, on the same simulated experiments."""
    looks, click_lift = 20, 0.05
    truth, unit_var, base = ctr_truth(rng, click_lift)
    planned = users_per_variant(truth, base, unit_var, 0.05, 0.8)
    per_look = -(-planned // looks)
    with bar(runs, "20 looks, A/A") as b:
        aa = looks_runs(rng, runs, looks, per_look, 0.0, truth, b.update)
    with bar(runs, "20 looks, effect at the MDE") as b:
        eff = looks_runs(rng, runs, looks, per_look, click_lift, truth, b.update)
    s = Section(f"Sequential testing: {looks} looks up to the planned size ({runs:,} experiments each, "
                f"{per_look:,} new users per arm a look, {looks * per_look:,} at the end: the calculator's size for "
                f"80% power at the MDE, a true CTR lift of {truth:.2%})")
    ok_fpr = aa["tuned_any"] <= 0.05
    gap = eff["fixed"] - eff["tuned_any"]
    ok_power = gap <= 0.10
    s.rows = [
        ["fixed horizon, read once at the planned size", f"{aa['fixed']:.1%}", f"{eff['fixed']:.1%}", "", ""],
        ["fixed horizon, peeked at every look", f"{aa['peeked']:.1%}", f"{eff['peeked']:.1%}", "", "(not valid)"],
        ["mSPRT, fixed τ = MDE, p = 1/Λ (before)", f"{aa['msprt_any']:.1%}", f"{eff['msprt_any']:.1%}",
         f"{eff['msprt_last']:.1%}", f"{eff['flipped_msprt']:.1%} shown significant, then not"],
        ["confidence sequence tuned to the planned size, running p and interval (now)", f"{aa['tuned_any']:.1%}",
         f"{eff['tuned_any']:.1%}", f"{eff['tuned_last']:.1%}", f"FPR at most 5%: {_mark(ok_fpr)}; "
         f"within 10 points of the fixed test: {_mark(ok_power)}"],
    ]
    s.passed.append(ok_fpr)
    verdict = ("met" if ok_power else "not reachable by an always-valid test at this size, and is not counted in "
               "the verdict above")
    s.text = (_table("| test | A/A: significant at some look | effect: significant at some look (power) | "
                     "effect: shown significant at the last look | |", s.rows)
              + f"\n\nThe power target is {verdict}: "
                "the confidence sequence tuned to the planned size N has, at N, the half-width "
                "se·√(2(c+1)/c · ln(√(c+1)/α)) with c = −2 ln α + ln(1 − 2 ln α) = 7.94, that is 3.03 se instead "
                "of the fixed test's 1.96 se. An effect sized for 80% power sits 2.80 se from 0, so the last look "
                "alone rejects with probability Φ(2.80 − 3.03) ≈ 41%, and the 19 earlier looks add less than 10 "
                "points (a Brownian-motion computation gives 49%). No mixture does much better at N (tuning to N/2 "
                "gives 50%); the price of being allowed to stop at any look is about 30 points of power at the "
                "fixed test's 80% size, or equivalently about 1.75 times its sample for the same 80%. At the size "
                "planned here the fixed-τ mSPRT (τ = MDE = 2.80 · √V_N) is almost the tuned mixture "
                "(τ = √c · √V_N = 2.82 · √V_N), so their powers agree; what changes is that the running p-value "
                "keeps every significant result significant (the last column).")
    return s


def _srm_section(rng, runs) -> Section:
    s = Section("Sample ratio mismatch (flagged at p < 0.001)")
    fair = srm_runs(rng, 10 * runs, 50_000, 0.0)
    lossy_50 = srm_runs(rng, runs, 50_000, 0.02)
    lossy_150 = srm_runs(rng, runs, 150_000, 0.02)
    s.rows = [["no loss, 50,000 per arm", f"{fair:.2%}", "at most 0.2%", _mark(fair <= 0.002)],
              ["2% of one arm lost, 50,000 per arm", f"{lossy_50:.1%}", "at least 95%", _mark(lossy_50 >= 0.95)],
              ["2% of one arm lost, 150,000 per arm", f"{lossy_150:.1%}", "at least 95%", _mark(lossy_150 >= 0.95)]]
    s.passed += [fair <= 0.002, lossy_150 >= 0.95]
    s.text = (_table("| case | flagged | target | met |", s.rows)
              + "\n\nAt 50,000 users per arm a 2% loss shifts the split by 0.0142·√50,000 ≈ 3.2 standard errors, "
                "just under the 3.29 of p < 0.001, so it is flagged about half the time: the 95% target at that "
                "size cannot be met with a 0.001 threshold (it would need p < 0.05, and with it 5% false alarms). "
                "From about 121,000 users per arm the 2% loss is flagged in 95% of runs; the 150,000 row shows it.")
    return s


def _cuped_section(aa, plt, out_dir) -> Section:
    """CUPED variance reduction, measured on the A/A runs' lifts."""
    s = Section("CUPED: variance reduction")
    raw, adj = (np.array(x) for x in aa["lifts"]["saves_per_user"])
    measured_red = 1 - np.var(adj) / np.var(raw)
    ok = abs(measured_red - RHO2_SAVES) <= 0.05
    raw_c, adj_c = (np.array(x) for x in aa["lifts"]["closeup_ctr"])
    s.rows = [["saves_per_user", f"{measured_red:.1%}", f"{RHO2_SAVES:.1%} (θ/(1+θ))², θ = {SAVE_SCALE:g}",
               _mark(ok)],
              ["closeup_ctr", f"{1 - np.var(adj_c) / np.var(raw_c):.1%}", "(per-user CTR and activity persist)", ""]]
    s.passed.append(ok)
    s.text = _table("| metric | variance of the lift removed (A/A runs) | theory ρ² | within 5 points |", s.rows)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.scatter(raw, adj, s=4, color="#0b4f9c")
    ax.set_xlabel("lift, unadjusted")
    ax.set_ylabel("lift, CUPED")
    ax.set_title(f"saves_per_user: {measured_red:.0%} of the variance removed")
    s.plot = _save(fig, out_dir, "validation-cuped.png")
    return s


def _cuped_pp_section(rng, runs, bar) -> Section:
    """CUPED (own pre-period value) against CUPED++ (with another metric's pre-period value
    and the "any pre-period event" indicator), on the same A/A experiments."""
    single_theory, multi_theory = cuped_pp_theory(rng)
    aa_count = 4 * runs
    with bar(aa_count, "CUPED vs CUPED++, A/A") as b:
        r = cuped_pp_runs(rng, aa_count, PP_N, b.update)
    raw_var = np.var(r["raw"])
    single, multi = 1 - np.var(r["cuped"]) / raw_var, 1 - np.var(r["cuped_pp"]) / raw_var
    fpr = {k: float(np.mean(r[f"p_{k}"] < 0.05)) for k in ("raw", "cuped", "cuped_pp")}
    ok_single, ok_multi = abs(single - single_theory) <= 0.05, abs(multi - multi_theory) <= 0.05
    ok_more, ok_fpr = multi > single, 0.04 <= fpr["cuped_pp"] <= 0.06
    s = Section(f"Variance reduction: CUPED vs CUPED++ ({aa_count:,} A/A experiments, {PP_N:,} users per arm, "
                f"{PP_NEW_SHARE:.0%} of them new)")
    s.rows = [["variance of the lift removed", "0", f"{single:.1%}", f"{multi:.1%}",
               f"R² from 400,000 users: {single_theory:.1%} and {multi_theory:.1%}, each within 5 points; "
               "CUPED++ above CUPED", _mark(ok_single and ok_multi and ok_more)],
              ["false positive rate (A/A)", f"{fpr['raw']:.2%}", f"{fpr['cuped']:.2%}", f"{fpr['cuped_pp']:.2%}",
               "CUPED++ in [4%, 6%]", _mark(ok_fpr)]]
    s.passed += [ok_single, ok_multi, ok_more, ok_fpr]
    s.text = (_table("| measure | unadjusted | CUPED (own pre-period saves) | CUPED++ (+ pre-period clicks, "
                     "any pre-period event) | target | met |", s.rows)
              + "\n\nSaves after exposure follow each user's activity, which the saves and the clicks before "
                "exposure each measure with noise: together they predict it better than the saves alone. New "
                "users have no pre-period events and a level of their own, which the indicator gives them; without "
                "it their zeros would read as inactive users. The theory column is the in-sample R² of the "
                "per-user regression, the share of a variant's variance the adjustment removes.")
    return s


def _capping_section(rng, runs, bar) -> Section:
    """Capping (winsorization) on heavy-tailed data: power gained, false positives kept."""
    aa_count = 4 * runs
    with bar(runs, "capping, 10% lift") as b:
        power = capping_runs(rng, runs, HEAVY_N, HEAVY_LIFT, progress=b.update)
    with bar(aa_count, "capping, A/A") as b:
        aa = capping_runs(rng, aa_count, HEAVY_N, 0.0, progress=b.update)
    gain = power["capped"] - power["plain"]
    ok_gain, ok_fpr = gain > 0, 0.04 <= aa["capped"] <= 0.06
    s = Section(f"Capping at the {CAP_PERCENTILE:g}th percentile on heavy-tailed data (values ~ LogNormal(0, "
                f"{HEAVY_SIGMA:g}), {HEAVY_N:,} users per arm; {runs:,} experiments with a {HEAVY_LIFT:.0%} lift on "
                f"each user's value, {aa_count:,} A/A experiments)")
    s.rows = [[f"power at a {HEAVY_LIFT:.0%} lift", f"{power['plain']:.1%}", f"{power['capped']:.1%}",
               f"gain > 0: {gain * 100:+.1f} pp", _mark(ok_gain)],
              ["false positive rate (A/A)", f"{aa['plain']:.2%}", f"{aa['capped']:.2%}", "capped in [4%, 6%]",
               _mark(ok_fpr)]]
    s.passed += [ok_gain, ok_fpr]
    s.text = (_table("| measure | without capping | capped | target | met |", s.rows)
              + "\n\nThe cap is the percentile of both arms' values pooled, so it is the same for both and "
                "blind to the variant: the A/A comparison stays fair. Capping changes what is estimated (the mean "
                "of the capped values), which is why the lift's truth is not checked here; the test of "
                "\"no difference\" keeps its level.")
    return s


def _guardrail_section(rng, runs, bar) -> Section:
    """Guardrails' non-inferiority test: its level at the margin, its power without harm."""
    at_margin_count = 4 * runs
    with bar(at_margin_count, "guardrail at the margin") as b:
        at_margin = guardrail_runs(rng, at_margin_count, GUARD_N, 1 + GUARD_MARGIN, b.update)
    with bar(runs, "guardrail, no harm") as b:
        none = guardrail_runs(rng, runs, GUARD_N, 1.0, b.update)
    with bar(runs, "guardrail, 5% harm") as b:
        harmed = guardrail_runs(rng, runs, GUARD_N, 1.05, b.update)
    # Normal approximation of the power without harm: the margin in standard errors, less z_(1−α).
    se = np.sqrt((1.0 + (1 + GUARD_MARGIN) ** 2) / GUARD_N)
    expected = float(stats.norm.cdf(GUARD_MARGIN / se - stats.norm.ppf(0.95)))
    ok_level = 0.04 <= at_margin["within_margin"] <= 0.06
    ok_power = abs(none["within_margin"] - expected) <= 0.03
    ok_harm = harmed["regressed"] >= 0.95 and harmed["within_margin"] == 0
    s = Section(f"Guardrails: non-inferiority with a {GUARD_MARGIN:.0%} margin (hides per user ~ Poisson, lower is "
                f"better, {GUARD_N:,} users per arm)")
    s.rows = [[f"treatment {GUARD_MARGIN:.0%} worse: at the margin ({at_margin_count:,} runs)",
               f"{at_margin['within_margin']:.2%}", f"{at_margin['regressed']:.1%}",
               "within: α = 5%, in [4%, 6%]", _mark(ok_level)],
              [f"no difference ({runs:,} runs)", f"{none['within_margin']:.1%}", f"{none['regressed']:.1%}",
               f"within: {expected:.1%} (normal approximation) ± 3 points", _mark(ok_power)],
              [f"treatment 5% worse ({runs:,} runs)", f"{harmed['within_margin']:.1%}", f"{harmed['regressed']:.1%}",
               "regressed ≥ 95%, never within", _mark(ok_harm)]]
    s.passed += [ok_level, ok_power, ok_harm]
    s.text = (_table("| truth | within the margin | regressed | target | met |", s.rows)
              + "\n\nAt the margin, \"within the margin\" is the test's false claim of safety: its rate is the "
                "one-sided test's level. The power without harm is Φ(M·μ/se − z₀.₉₅) with "
                "se = √((σ² + (1 + M)²σ²)/n).")
    return s


ALLOC_BASE, ALLOC_LIFT = 0.4, 0.10  # engaged users: Bernoulli(0.4), each treatment +10% relative
ALLOC_METRIC = R.MetricInfo("engaged_users", "Engaged users", "proportion", "higher", "primary", (0,))
ALLOCATIONS = {"50/50": (50, 50), "90/10": (90, 10), "three arms": (1, 1, 1)}


def allocation_runs(rng, runs: int, sizes: list[int], lift: float, correction: str = "holm",
                    progress=lambda: None) -> np.ndarray:
    """Per treatment, the share of runs in which the report called it significant: every
    treatment with the lift, the primary metric corrected across treatments as analysed."""
    variants = [R.VariantInfo(i + 1, "control" if i == 0 else f"treatment_{i}", 1, i == 0) for i in range(len(sizes))]
    settings = AnalysisSettings(cuped=False, correction=correction)
    hits = np.zeros(len(sizes) - 1)
    for _ in range(runs):
        moments = {v.id: Moments.from_data(rng.binomial(1, ALLOC_BASE * (1 if v.is_control else 1 + lift), n))
                   for v, n in zip(variants, sizes, strict=True)}
        [result] = R.corrected_results(lambda levels, at=moments: [
            R.metric_result(ALLOC_METRIC, variants, at, settings, levels and levels[0])], settings)
        hits += [c.significant for c in result.comparisons]
        progress()
    return hits / runs


def allocation_section(rng, runs, bar) -> Section:
    """The calculator's promise for any split and number of arms, under Holm, against the
    rejection rate of the analysis itself."""
    variance = ALLOC_BASE * (1 - ALLOC_BASE)
    s = Section(f"Power for any split: 50/50, 90/10 and three arms under Holm ({runs:,} experiments each; engaged "
                f"users ~ Bernoulli({ALLOC_BASE:g}), every treatment +{ALLOC_LIFT:.0%} relative; each split sized by "
                "the calculator for 80% power in every comparison)")
    for name, weights in ALLOCATIONS.items():
        total = users_needed(ALLOC_LIFT, ALLOC_BASE, variance, weights, 0.05, 0.8, "holm")
        sizes = [round(total * w / sum(weights)) for w in weights]
        promised = comparison_powers(ALLOC_LIFT, ALLOC_BASE, variance, sizes[0], sizes[1:], 0.05, "holm")
        # What the two-equal-arm calculator said of the same arms: the control's size in both.
        before = power_at(ALLOC_LIFT, sizes[0], ALLOC_BASE, variance)
        with bar(runs, f"power, {name}") as b:
            measured = allocation_runs(rng, runs, sizes, ALLOC_LIFT, "holm", b.update)
        for j, (p, got) in enumerate(zip(promised, measured, strict=True)):
            ok = abs(got - p) <= 0.03
            arm = name if len(promised) == 1 else f"{name}, treatment {j + 1}"
            s.rows.append([arm, " / ".join(f"{n:,}" for n in sizes), f"{p:.1%}", f"{got:.1%}",
                           f"{round((got - p) * 100, 1) + 0.0:+.1f}", f"{before:.1%}", _mark(ok)])
            s.passed.append(ok)
    s.text = (_table("| split | users per arm (control first) | promised | measured | difference (points) | "
                     "two-equal-arm calculator said | within 3 points |", s.rows)
              + "\n\nThe promise is `analysis.stats.power`: each comparison's z has variance σ²(1/n_c + 1/n_t), and "
                "with several treatments the power of \"significant after Holm\" is computed on correlated draws "
                "of the z's (they share the control). The measured rate is the report's own `significant` after "
                "`corrected_results`. The last column is what the calculator said before it knew the split: two "
                "arms the size of the control, tested at α.")
    return s


ILV_AA_USERS = 1_000
ILV_POPULATION = 2_000_000
ILV_SENSITIVITY_GOAL = 10


def interleaving_section(rng, runs, bar) -> Section:
    """Team-draft interleaving against an A/B test of the same two rankers
    (`analysis.interleaving_validation` holds the model and says why visits come from a bank)."""
    # The banks and the population grow with the runs up to their full size at 1,000, so that
    # a small run (the tests') takes seconds; at full size these are the module's own.
    aa_bank, ab_bank, click_bank = (min(size, size * runs // 1000) for size in (IV.AA_BANK, IV.AB_BANK, IV.CLICK_BANK))
    population = min(ILV_POPULATION, ILV_POPULATION * runs // 1000)
    with bar(aa_bank + ab_bank, "interleaving: merging lists") as b:
        bank = IV.make_bank(rng, aa_bank, ab_bank, click_bank, progress=b.update)
    sens = IV.sensitivity(rng, bank, population)
    halves = [IV.sensitivity(rng, bank.half(i), population).ratio for i in (0, 1)]
    # The same pair of rankers, with users who differ as real users do (the model's docstring).
    differing = IV.sensitivity(rng, bank, population, model=IV.DIFFERING)
    differing_halves = [IV.sensitivity(rng, bank.half(i), population, model=IV.DIFFERING).ratio for i in (0, 1)]
    aa_count = 4 * runs  # as the other A/A checks: a rate near 5% needs the runs to be told from 4% or 6%
    with bar(aa_count, "interleaving A/A") as b:
        aa = IV.aa_rate(rng, bank, aa_count, ILV_AA_USERS, b.update)
    with bar(runs, "interleaving vs A/B") as b:
        agree = IV.agreement(rng, bank, runs, sens.ab_users, b.update)
    with bar(runs, "interleaving power") as b:
        power = IV.power_rate(rng, bank, runs, sens.interleaving_users, b.update)
    with bar(runs, "interleaving power, users differing") as b:
        power_differing = IV.power_rate(rng, bank, runs, differing.interleaving_users, b.update, IV.DIFFERING)
    judged = agree.ab_significant
    agreed = agree.same_winner / judged if judged else float("nan")
    clicked = round(sens.interleaving_users * sens.clicked_share)
    s = Section(f"Interleaving vs A/B: team-draft on a simulated closeup grid ({runs:,} experiments per check, "
                f"A/A {aa_count:,})")
    checks = [
        (f"A/A false positive rate ({aa_count:,} experiments, {ILV_AA_USERS:,} users each, one ranker on both teams)",
         f"{aa:.2%}", "in [4%, 6%]", 0.04 <= aa <= 0.06),
        (f"agreement: interleaving names a significant winner on the side of a significant A/B "
         f"({sens.ab_users:,} users each way)", f"{agreed:.1%} of {judged:,} runs", "at least 90%", agreed >= 0.9),
        (f"interleaving's power at its computed size ({sens.interleaving_users:,} users)", f"{power:.1%}",
         "within 3 points of 80%", abs(power - 0.8) <= 0.03),
        (f"the same with users differing ({differing.interleaving_users:,} users)", f"{power_differing:.1%}",
         "within 3 points of 80%", abs(power_differing - 0.8) <= 0.03),
    ]
    for name, got, target, ok in checks:
        s.rows.append([name, got, target, _mark(ok)])
        s.passed.append(ok)
    s.rows.append(["sensitivity with users alike: users for 80% power, A/B (two arms) over interleaving (every "
                   "user exposed)", f"{sens.ab_users:,} / {sens.interleaving_users:,} = {sens.ratio:.1f}×",
                   "for comparison", ""])
    ratio_met = differing.ratio >= ILV_SENSITIVITY_GOAL
    s.rows.append(["sensitivity with users differing in activity and click propensity",
                   f"{differing.ab_users:,} / {differing.interleaving_users:,} = {differing.ratio:.1f}×",
                   f"goal: at least {ILV_SENSITIVITY_GOAL}×", _mark(ratio_met)])
    s.passed.append(ratio_met)
    s.text = (
        f"Each visit shows {IV.K} of a fresh pool of {IV.POOL} candidate items; the user's true relevance of each is "
        f"r ~ Beta({IV.BETA_A:g}, {IV.BETA_B:g}) (mean {IV.BETA_A / (IV.BETA_A + IV.BETA_B):.1%}). A ranker orders "
        f"the pool by r + Normal(0, σ): the control has σ = {IV.SIGMA_CONTROL:g} and the treatment, the better one, "
        f"σ = {IV.SIGMA_TREATMENT:g}. The item at position p (from 0) is clicked with probability r / log2(p + 2), "
        "the simulator's position bias, independently per position. A user makes 1 + Poisson"
        f"({IV.EXTRA_VISITS:g}) visits. In an A/B test half the users see the control's top {IV.K} on every visit "
        f"and half the treatment's; the metric is clicks per user (closeup CTR {bank.clicks_control.mean() / IV.K:.2%} "
        f"under the control), the true lift {sens.ab_lift:.2%}, tested by the production `compare`. In an "
        "interleaving test every visit shows the production `team_draft` of the two rankings seeded by "
        "`request_seed` of a request id; a click credits the team that placed the item, and a user with a credited "
        "click scores the sign of (treatment credits − control credits), tested by the production "
        "`preference_test`. The A/A pair is one ranker's list on both teams.\n\n"
        + _table("| check | measured | target | met |", s.rows)
        + f"\n\nSensitivity. The A/B size is the production calculator's (`users_per_variant`, two equal arms) for "
          "the true lift and the per-user variance, both exact from the visits (a user's clicks sum 1 + Poisson "
          f"visits). The interleaving size is `users_for_power` for the true mean score Δ = {sens.delta:.3f} "
          f"(variance {sens.score_variance:.3f}) among users with a credited click, {clicked:,} of them, divided by "
          f"their share of the users exposed ({sens.clicked_share:.1%}); the power row checks that size by "
          f"simulation. Each half of the banks alone gives {halves[0]:.1f}× and {halves[1]:.1f}×: the figure's own "
          f"uncertainty, mostly that of Δ. With users alike the saving is {sens.ratio:.1f}×: the only difference "
          "between users is then their number of visits, and a user's relevances do not persist from one visit to "
          "the next, so an A/B test's per-user variance is close to bare click noise.\n\n"
          "Real users differ in how much they click, which an A/B test pays for in variance and interleaving, "
          "comparing both rankers inside each user's own visits, does not. With each user's click propensity "
          f"c ~ Gamma({IV.DIFFERING.propensity_shape:g}, 1/{IV.DIFFERING.propensity_shape:g}) (mean 1, coefficient "
          f"of variation {IV.DIFFERING.propensity_shape ** -0.5:.2f}) scaling all their click probabilities, and "
          f"their visits 1 + Poisson(a) with a ~ Gamma({IV.DIFFERING.activity_shape:g}, "
          f"{IV.EXTRA_VISITS / IV.DIFFERING.activity_shape:g}) (the same mean, {IV.EXTRA_VISITS:g} visits beyond "
          f"the first), the A/B test needs {differing.ab_users:,} users (its per-user variance by the law of total "
          "variance over the visit, the propensity and the visits, checked against a direct simulation in "
          f"tests/analysis/test_interleaving_validation.py) and interleaving {differing.interleaving_users:,} "
          f"({differing.clicked_share:.1%} of them with a credited click, Δ = {differing.delta:.3f}): "
          f"{differing.ratio:.1f}× (each half of the banks: {differing_halves[0]:.1f}× and "
          f"{differing_halves[1]:.1f}×). The goal is judged on this model: a spread of 0.71 is modest next to "
          "production traffic, where a few users click many times what most do, and Chapelle et al. (2012) report "
          "one to two orders of magnitude on Bing and Yahoo traffic.\n\n"
          "Every condition's visits are simulated once into a bank "
          f"({aa_bank:,} interleaved A/A visits, {ab_bank:,} interleaved control-against-treatment visits, "
          f"{click_bank:,} A/B visits, the two A/B rankers on the same pools), and each experiment draws its users' "
          "visits from it with replacement: visits are independent given the rankers, and it is the Python merge "
          "per list that would otherwise take hours.")
    s.summary = [f"interleaving A/A false positive rate: {aa:.2%} ({aa_count:,} runs)",
                 f"interleaving agrees with significant A/B: {agreed:.1%} of {judged:,} runs",
                 f"interleaving sensitivity: {differing.ratio:.1f}× fewer users than A/B for 80% power (users "
                 f"differing in activity and click propensity; {sens.ratio:.1f}× with users alike)"]
    return s


def _save(fig, out_dir, name):
    if out_dir is None:
        return None
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    return name


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass


def markdown(sections: list[Section], runs: int, seed: int, image_prefix: str) -> str:
    ok = all(all(s.passed) for s in sections)
    lines = ["# Statistical validation", "",
             f"Written by `python manage.py validate_stats --runs {runs}` (seed {seed}; the same command writes the "
             "same numbers). Every experiment below is simulated per user with a known truth and analysed by the "
             "production code (`analysis.results.metric_result`, the function behind every report). The model is "
             "in `analysis/validation.py`.", "",
             f"All targets met: {'yes' if ok else 'no (see the rows marked no)'}.", ""]
    for s in sections:
        lines += [f"## {s.title}", "", s.text, ""]
        if s.plot:
            lines += [f"![{s.title}]({image_prefix}{s.plot})", ""]
    lines += ["## End to end", "",
              "`tests/analysis/test_end_to_end.py`, run in CI: `python manage.py simulate`'s simulator "
              "(`demo/simulator.py`) sends 20,000 users through gunicorn (assignment, closeup, clicks, saves, "
              "hides; 2% of events sent twice), a Celery worker stores them in PostgreSQL, and the analysis must put "
              "the true CTR lift (30%, injected on the treatment; the truth is the simulator's own expected clicks "
              "per impression) inside its confidence interval, with no SRM and every event stored once. A second "
              "run composes two experiments on the same 6,000 users, one in a retrieval layer and one in a ranking "
              "layer, with a lift injected on each (30% and 25%): each experiment's analysis must find its own lift "
              "inside its interval, the truth read from the simulator's tallies per experiment and variant.", "",
              "## The simulator", "",
              "Each visit is a person of the synthetic world opening a pin of a topic they like: assignment, the "
              "closeup grid (whose served impressions the API logs), then a click on each shown pin with probability "
              "interest × pin quality × 1/log2(position + 2) × the variant's injected lift; a save or a closeup open "
              "after some clicks, a hide now and then. `--drop` and `--duplicate` lose or repeat a share of the "
              "events on purpose. Not done: simulated days (the API accepts events up to 7 days old, but exposures "
              "are stamped by the server when they happen, so back-dated traffic would precede its own exposure); "
              "the calibrations above simulate days at the per-user level instead.", ""]
    return "\n".join(lines)
