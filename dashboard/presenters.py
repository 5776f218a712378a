"""Turns a stored report into what the results page shows: pure, no Django import."""


def pct(x, digits=2) -> str:
    return "—" if x is None else f"{x * 100:+.{digits}f}%"


def num(x, digits=4) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"


def p_text(p) -> str:
    if p is None:
        return "—"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def chosen(comparison: dict, cuped: bool, sequential: bool) -> dict:
    """The numbers of one comparison under the page's toggles: fixed-horizon or
    sequential, with or without CUPED."""
    base = comparison.get("cuped") if cuped and comparison.get("cuped") else comparison
    if sequential:
        seq = base.get("sequential") or {}
        return {"relative_lift": base.get("relative_lift"), "ci_low": seq.get("ci_low"), "ci_high": seq.get("ci_high"),
                "p_value": seq.get("p_value"), "significant": bool(seq.get("significant")),
                "absolute_lift": base.get("absolute_lift")}
    return {"relative_lift": base.get("relative_lift"), "ci_low": base.get("ci_low"), "ci_high": base.get("ci_high"),
            "p_value": base.get("p_value_adjusted", base.get("p_value")), "significant": bool(base.get("significant")),
            "absolute_lift": base.get("absolute_lift")}


def verdict(c: dict, direction: str) -> tuple[str, str]:
    """(words, css class): never colour alone."""
    if c["relative_lift"] is None:
        return "not enough data", "neutral"
    if not c["significant"]:
        return "not significant", "neutral"
    better = (c["relative_lift"] > 0) == (direction != "lower")
    return ("significantly better", "good") if better else ("significantly worse", "bad")


def metric_rows(block: dict, cuped: bool, sequential: bool) -> list[dict]:
    comparisons = {c["variant"]: c for c in block["comparisons"]}
    rows = []
    for v in block["variants"]:
        row = {"variant": v["variant"], "is_control": v.get("is_control"), "users": f"{v['users']:,}",
               "mean": num(v.get("cuped_mean") if cuped and v.get("cuped_mean") is not None else v.get("mean"))}
        c = comparisons.get(v["variant"])
        if c is not None:
            x = chosen(c, cuped, sequential)
            words, css = verdict(x, block["direction"])
            row.update(absolute_lift=num(x["absolute_lift"]), relative_lift=pct(x["relative_lift"]),
                       ci=f"{pct(x['ci_low'])} to {pct(x['ci_high'])}", p_value=p_text(x["p_value"]),
                       verdict=words, verdict_class=css,
                       chance=pct(c.get("chance_to_beat_control"), 1).lstrip("+") if c.get(
                           "chance_to_beat_control") is not None else "—")
        rows.append(row)
    return rows


def forest_data(body: dict, cuped: bool, sequential: bool) -> list[dict]:
    points = []
    for block in body.get("metrics") or []:
        if block["role"] not in ("primary", "guardrail"):
            continue
        for c in block["comparisons"]:
            x = chosen(c, cuped, sequential)
            if x["relative_lift"] is None or x["ci_low"] is None:
                continue
            points.append({"label": f"{block['metric']} · {c['variant']}", "lift": x["relative_lift"],
                           "low": x["ci_low"], "high": x["ci_high"], "significant": x["significant"]})
    return points


def series_data(body: dict, sequential: bool) -> dict:
    series = body.get("series") or {}
    lines: dict[str, dict] = {}
    for day in series.get("days") or []:
        for c in day["comparisons"]:
            low = c.get("sequential_ci_low") if sequential else c.get("ci_low")
            high = c.get("sequential_ci_high") if sequential else c.get("ci_high")
            if c.get("relative_lift") is None or low is None:
                continue
            line = lines.setdefault(c["variant"], {"variant": c["variant"], "dates": [], "lift": [], "low": [],
                                                   "high": []})
            line["dates"].append(day["date"])
            line["lift"].append(c["relative_lift"])
            line["low"].append(low)
            line["high"].append(high)
    return {"metric": series.get("metric"), "lines": list(lines.values())}


def primary_summary(body: dict | None) -> list[dict]:
    """For the list page: each treatment's primary-metric lift with its CI and mark."""
    if not body:
        return []
    block = next((b for b in body.get("metrics") or [] if b["role"] == "primary"), None)
    if block is None:
        return []
    out = []
    for c in block["comparisons"]:
        x = chosen(c, False, False)
        words, css = verdict(x, block["direction"])
        out.append({"variant": c["variant"], "lift": pct(x["relative_lift"]),
                    "ci": f"{pct(x['ci_low'])} to {pct(x['ci_high'])}", "verdict": words, "css": css})
    return out
