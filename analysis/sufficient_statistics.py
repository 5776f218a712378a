"""Per-variant sufficient statistics of an experiment's metrics, computed in the database.

This is the one module with the SQL that aggregates (PostgreSQL and SQLite). It reads
exposures (one row per user and experiment, forced QA users left out) and events, and
returns, per variant (and segment), the moments of a handful of per-user variables:
n, Σv and Σv_i·v_j. No event row reaches Python.

    x   the experiment's exposed users, with their first exposure time t0
    e   the events of the types the metrics need, from the earliest pre-period on
    u   one row per user: each variable as a conditional count (or 0/1 for "any") of
        that user's events after t0 (within the metric's window), or, for a CUPED
        covariate, in the pre-period days before t0
    →   per variant: COUNT(*), SUM(v), SUM(v_i·v_j)

The daily series (for the charts) is the same per user and day, turned into the
changes each user-day makes to the cumulative sums, so one pass gives every day.
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.db import connections, transaction

from analysis.metric_kinds import registry as metric_kinds
from analysis.metric_kinds.base import COUNT, DAYS, VALUE, filters_of
from analysis.stats.moments import Moments
from events.validation import EVENT_TYPES


@dataclass(frozen=True)
class MetricSpec:
    """What the SQL needs of a metric (a plain copy of the Metric row)."""

    key: str
    kind: str
    numerator_types: tuple[str, ...]
    denominator_types: tuple[str, ...] = ()
    aggregation: str = "count"
    window_hours: int | None = None
    pre_period_days: int = 0
    cap_percentile: float | None = None  # winsorize each per-user count at this pooled percentile (0 < p < 100)
    denominator_aggregation: str = "count"
    numerator_filters: tuple = ()  # ((property, op, values), …), see metric_kinds.base.filters_of
    denominator_filters: tuple = ()

    def __post_init__(self):
        # Given as the API and the Metric row have them ([{"property", "op", "value"}]) or as tuples.
        object.__setattr__(self, "numerator_filters", filters_of(self.numerator_filters))
        object.__setattr__(self, "denominator_filters", filters_of(self.denominator_filters))

    @classmethod
    def of(cls, metric) -> "MetricSpec":
        return cls(metric.key, metric.kind, tuple(metric.numerator_types), tuple(metric.denominator_types),
                   metric.aggregation, metric.window_hours, metric.cuped_pre_period_days,
                   getattr(metric, "cap_percentile", None), getattr(metric, "denominator_aggregation", "count"),
                   getattr(metric, "numerator_filters", ()), getattr(metric, "denominator_filters", ()))


@dataclass(frozen=True)
class Variable:
    """One per-user number: events of `types` after first exposure (within `window_hours`),
    or in the `pre_days` before it."""

    types: tuple[str, ...]
    any: bool
    window_hours: int | None = None
    pre_days: int = 0
    # Winsorized at this percentile (0 < p < 100) of the pooled per-user values above 0;
    # None: not capped. A 0/1 ("any") variable is never capped.
    cap_percentile: float | None = None
    measure: str = COUNT  # count the events, sum their values, or count their distinct days
    filters: tuple = ()  # ((property, op, values), …): only events whose properties pass

    def __post_init__(self):
        if not self.types or any(t not in EVENT_TYPES for t in self.types):
            raise ValueError(f"unknown event types {self.types!r}")
        if self.measure not in (COUNT, VALUE, DAYS):
            raise ValueError(f"unknown measure {self.measure!r}")
        if any(op not in FILTER_OPS for _, op, _ in self.filters):
            raise ValueError(f"unknown filter operator in {self.filters!r}")
        if self.cap_percentile is not None and not 0 < self.cap_percentile < 100:
            raise ValueError(f"cap percentile {self.cap_percentile!r} is not in (0, 100)")
        if self.any and self.cap_percentile is not None:
            object.__setattr__(self, "cap_percentile", None)


@dataclass
class MetricLayout:
    """Where a metric's variables sit in the moments: post (1 or 2) and pre (0, 1 or 2),
    and CUPED++'s further covariates beside its own pre-period value: (name, kind, indices)."""

    post: list[int] = field(default_factory=list)
    pre: list[int] = field(default_factory=list)
    covariates: list[tuple[str, str, list[int]]] = field(default_factory=list)


# CUPED++ (docs/statistics.md, "CUPED"): besides its own pre-period value, a metric is
# adjusted on at most this many other metrics' pre-period primary counts, and on whether
# the user had any event in the pre-period. Each costs products in the one query.
MAX_OTHER_COVARIATES = 3
ACTIVE_BEFORE = "any_pre_period_event"


def plan(metrics: list[MetricSpec], cuped: bool = True) -> tuple[list[Variable], dict[str, MetricLayout]]:
    """The distinct per-user variables the metrics need, and where each metric's are."""
    variables: list[Variable] = []

    def index(v: Variable) -> int:
        if v not in variables:
            variables.append(v)
        return variables.index(v)

    layouts = {}
    for m in metrics:
        counts = metric_kinds.get(m.kind).per_user_counts(m)
        layout = MetricLayout()
        cap = m.cap_percentile
        layout.post = [index(Variable(c.types, c.any, m.window_hours, cap_percentile=cap, measure=c.measure,
                                      filters=c.filters)) for c in counts]
        if cuped and m.pre_period_days > 0:
            # The CUPED covariate is capped the same way (at its own pooled percentile).
            layout.pre = [index(Variable(c.types, c.any, None, m.pre_period_days, cap, c.measure, c.filters))
                          for c in counts]
        layouts[m.key] = layout
    if cuped:
        _add_covariates(metrics, layouts, index)
    return variables, layouts


def _add_covariates(metrics: list[MetricSpec], layouts: dict[str, MetricLayout], index) -> None:
    """CUPED++'s covariates of each metric with a pre-period: the other metrics' pre-period
    primary counts (first count, distinct variables, in the metrics' order, at most
    MAX_OTHER_COVARIATES) and a 0/1 "any event of the metrics' types in the pre-period"."""
    with_pre = [m for m in metrics if layouts[m.key].pre]
    types = tuple(sorted({t for m in with_pre for c in metric_kinds.get(m.kind).per_user_counts(m)
                          for t in c.types}))
    for m in with_pre:
        layout = layouts[m.key]
        seen = set(layout.pre)
        for other in with_pre:
            first = layouts[other.key].pre[0]
            if other.key != m.key and first not in seen and len(layout.covariates) < MAX_OTHER_COVARIATES:
                seen.add(first)
                layout.covariates.append((other.key, "mean", [first]))
        layout.covariates.append((ACTIVE_BEFORE, "mean", [index(Variable(types, True, None, m.pre_period_days))]))


def product_pairs(layouts: dict[str, MetricLayout]) -> list[tuple[int, int]]:
    pairs = set()
    for layout in layouts.values():
        idx = sorted(set(layout.post + layout.pre + [i for _, _, at in layout.covariates for i in at]))
        pairs.update((a, b) for i, a in enumerate(idx) for b in idx[i:])
    return sorted(pairs)


# --- Dialects -----------------------------------------------------------------------


class _Dialect:
    """Time arithmetic: PostgreSQL on timestamptz, SQLite on julian days (its stored
    datetimes are strings in more than one format; julianday() reads them all)."""

    def __init__(self, vendor: str):
        self.pg = vendor == "postgresql"

    def time(self, column: str) -> str:
        return column if self.pg else f"julianday({column})"

    def time_value(self, dt: datetime):
        return dt if self.pg else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def plus_hours(self, expr: str, hours: int) -> str:
        return f"({expr} + interval '{int(hours)} hours')" if self.pg else f"({expr} + {int(hours) / 24.0!r})"

    def minus_days(self, expr: str, days: int) -> str:
        return f"({expr} - interval '{int(days)} days')" if self.pg else f"({expr} - {int(days)})"

    def day(self, expr: str) -> str:
        return f"(({expr}) AT TIME ZONE 'UTC')::date" if self.pg else f"date({expr})"

    def segment(self) -> str:
        return "x.attributes ->> %s" if self.pg else "json_extract(x.attributes, %s)"

    def segment_param(self, key: str) -> str:
        return key if self.pg else '$."' + key.replace('"', "") + '"'

    def floor(self, expr: str) -> str:
        """⌊expr⌋ of a non-negative number (SQLite's floor() needs its math functions)."""
        return f"floor({expr})" if self.pg else f"CAST({expr} AS INTEGER)"

    def as_float(self, expr: str) -> str:
        return f"({expr})::float8" if self.pg else f"CAST({expr} AS REAL)"

    def property_text(self) -> str:
        """An event property as text, its name a parameter (property_param)."""
        return "(properties ->> %s)" if self.pg else "CAST(json_extract(properties, %s) AS TEXT)"

    def property_param(self, name: str) -> str:
        return name if self.pg else '$."' + name.replace('"', "") + '"'


FILTER_OPS = ("eq", "neq", "in")


def _filters(variables) -> list[tuple]:
    """Every distinct property filter the variables use, in one order: each becomes a 0/1
    column of the events CTE, computed once per event row."""
    return sorted({f for v in variables for f in v.filters})


def _filter_columns(variables, d: _Dialect) -> tuple[str, list]:
    """The events CTE's filter columns (f0, f1, …) with their parameters: names and values
    are always parameters, never pasted into the SQL."""
    sql, params = "", []
    for i, (name, op, values) in enumerate(_filters(variables)):
        text = d.property_text()
        if op == "eq":
            cond, args = f"{text} = %s", [d.property_param(name), values[0]]
        elif op == "neq":  # an event without the property is not equal to the value
            cond, args = f"({text} IS NULL OR {text} <> %s)", [d.property_param(name), d.property_param(name),
                                                                 values[0]]
        else:
            cond, args = f"{text} IN ({', '.join(['%s'] * len(values))})", [d.property_param(name), *values]
        sql += f", CASE WHEN {cond} THEN 1 ELSE 0 END AS f{i}"
        params += args
    return sql, params


def _event_columns(variables, d: _Dialect) -> tuple[str, list]:
    """What the events CTE carries beyond (user_id, ty, t) for these variables: the value
    to sum, the day to count, the filters' columns."""
    sql = ""
    if any(v.measure == VALUE for v in variables):
        sql += ", value"
    if any(v.measure == DAYS for v in variables):
        sql += f", {d.day('occurred_at')} AS day"
    filters_sql, params = _filter_columns(variables, d)
    return sql + filters_sql, params


def _types_sql(types) -> str:
    if any(t not in EVENT_TYPES for t in types):
        raise ValueError(f"unknown event types {types!r}")
    return ", ".join(f"'{t}'" for t in types)  # validated against EVENT_TYPES above


def _type_code_sql() -> str:
    """Event types as small integers, computed once per event row: the per-variable
    filters then compare integers, not strings."""
    return "CASE type " + " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(EVENT_TYPES)) + " END"


def _codes(types) -> str:
    return ", ".join(str(EVENT_TYPES.index(t)) for t in types)


def _bounds(variables, d: _Dialect) -> str:
    """Each variable's time bounds, computed once per exposed user (timestamptz ± interval
    is not free, and per event row and variable it added up to seconds)."""
    cols = {f"{d.minus_days('t0', n)} AS t0_pre{n}" for n in {v.pre_days for v in variables if v.pre_days}}
    cols |= {f"{d.plus_hours('t0', h)} AS t0_win{h}" for h in {v.window_hours for v in variables
                                                               if v.window_hours and not v.pre_days}}
    return "".join(f", {c}" for c in sorted(cols))


def _condition(v: Variable, d: _Dialect, filters: list) -> str:
    cond = [f"e.ty IN ({_codes(v.types)})"]
    cond += [f"e.f{filters.index(f)} = 1" for f in v.filters]
    if v.pre_days:
        cond += ["e.t < x.t0", f"e.t >= x.t0_pre{int(v.pre_days)}"]
    else:
        cond.append("e.t >= x.t0")
        if v.window_hours:
            cond.append(f"e.t < x.t0_win{int(v.window_hours)}")
    return " AND ".join(cond)


def _per_user_expression(v: Variable, d: _Dialect, filters: list) -> str:
    """The user's count of matching events (made 0/1 for an "any" variable later), the
    sum of their values (an event without one adds nothing), or their distinct days."""
    condition = _condition(v, d, filters)
    if v.measure == VALUE:
        return f"COALESCE(SUM(e.value) FILTER (WHERE {condition}), 0)"
    if v.measure == DAYS:
        return f"COUNT(DISTINCT e.day) FILTER (WHERE {condition})"
    return f"COUNT(*) FILTER (WHERE {condition})"


def _as_value(v: Variable, column: str) -> str:
    return f"(CASE WHEN {column} > 0 THEN 1 ELSE 0 END)" if v.any else column


def _join_condition(variables, d: _Dialect) -> str:
    """Events that can count for any variable: from the longest pre-period on."""
    longest = max((v.pre_days for v in variables), default=0)
    return f"e.t >= x.t0_pre{int(longest)}" if longest else "e.t >= x.t0"


@dataclass(frozen=True)
class Window:
    """Which exposed users count: first exposed in [start, end) (either open). A phase's
    window; the default counts every user, as before phases."""

    start: datetime | None = None
    end: datetime | None = None

    def sql(self, d: "_Dialect") -> tuple[str, list]:
        cond, params = "", []
        if self.start is not None:
            cond += " AND first_exposed_at >= %s"
            params.append(d.time_value(self.start))
        if self.end is not None:
            cond += " AND first_exposed_at < %s"
            params.append(d.time_value(self.end))
        return cond, params


EVERYONE = Window()


def _exposed(d: _Dialect, experiment_id, as_of, segment_by, variables=(), window: Window = EVERYONE
             ) -> tuple[str, list]:
    """The x CTE: the experiment's exposed users, first exposed in the window by the analysis time."""
    params: list = []
    seg = ""
    if segment_by:
        seg = f", {d.segment()} AS segment"
        params.append(d.segment_param(segment_by))
    window_sql, window_params = window.sql(d)
    sql = f"""x0 AS (
            SELECT id AS xid, user_id, variant_id, {d.time('first_exposed_at')} AS t0{seg}
            FROM experiments_exposure x
            WHERE experiment_id = %s AND NOT forced AND first_exposed_at <= %s{window_sql}
        ),
        x AS (SELECT x0.*{_bounds(variables, d)} FROM x0)"""
    return sql, params + [experiment_id, d.time_value(as_of), *window_params]


def _sources(d: _Dialect, variables, experiment_id, as_of, since, segment_by, post_only=False,
             window: Window = EVERYONE):
    """The x and e CTEs, with their parameters."""
    x_sql, params = _exposed(d, experiment_id, as_of, segment_by, variables, window)
    types = sorted({t for v in variables for t in v.types if not (post_only and v.pre_days)})
    columns, column_params = _event_columns(variables, d)
    sql = f"""
        WITH {x_sql},
        e AS (
            SELECT user_id, {_type_code_sql()} AS ty, {d.time('occurred_at')} AS t{columns}
            FROM experiments_event
            WHERE occurred_at >= %s AND occurred_at <= %s AND type IN ({_types_sql(types)})
        )"""
    return sql, params + column_params + [d.time_value(since), d.time_value(as_of)]


def _earliest_event_needed(cursor, d: _Dialect, experiment_id: int, variables: list[Variable],
                           window: Window = EVERYONE) -> datetime | None:
    window_sql, window_params = window.sql(d)
    cursor.execute("SELECT MIN(first_exposed_at) FROM experiments_exposure WHERE experiment_id = %s AND NOT forced"
                   + window_sql, [experiment_id, *window_params])
    (first,) = cursor.fetchone()
    if first is None:
        return None
    if isinstance(first, str):  # SQLite without Django's converters on a raw cursor
        first = datetime.fromisoformat(first)
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return first - timedelta(days=max((v.pre_days for v in variables), default=0))


_PG_SETTINGS: list[str] = []


def _run(using: str, sql: str, params: list, jit: bool = True) -> list[tuple]:
    conn = connections[using]
    with transaction.atomic(using=using), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            # A parallel hash join of the events on the exposed users, and hash aggregates
            # per user: keep the hash tables in memory.
            cursor.execute("SET LOCAL work_mem = '256MB'")
            if not jit:
                cursor.execute("SET LOCAL jit = off")
            for statement in _PG_SETTINGS:
                cursor.execute(statement)
        cursor.execute(sql, params)
        return cursor.fetchall()


def variant_moments(experiment_id: int, variables: list[Variable], pairs: list[tuple[int, int]], as_of: datetime,
                    segment_by: str | None = None, using: str = "default", window: Window = EVERYONE,
                    ) -> "VariantMoments":
    """{(variant_id, segment): Moments over `variables`}, over the users first exposed in
    `window`; products outside `pairs` are nan. Its `caps` are the values the capped
    variables were winsorized at ({variable index: cap}, None when no user had any).

    Variants without any exposed user are absent."""
    conn = connections[using]
    d = _Dialect(conn.vendor)
    with conn.cursor() as cursor:
        since = _earliest_event_needed(cursor, d, experiment_id, variables, window)
    if since is None:
        return VariantMoments()
    sources, params = _sources(d, variables, experiment_id, as_of, since, segment_by, window=window)
    k = len(variables)
    filters = _filters(variables)
    per_user = ",\n                ".join(f"{_per_user_expression(v, d, filters)} AS v{i}"
                                      for i, v in enumerate(variables))
    capped = [i for i, v in enumerate(variables) if v.cap_percentile is not None]
    caps_sql, cap_params = _caps(variables, capped, d)
    params = params + cap_params
    values = ", ".join(f"{_capped_value(v, i, i in capped)} AS v{i}" for i, v in enumerate(variables))
    values += "".join(f", cap{i}" for i in capped)
    # The caps as one row, joined once; w materialized (PostgreSQL) so each capped value
    # is computed once per user rather than once per product it enters.
    cap_joins = " CROSS JOIN caps" if capped else ""
    if capped:
        caps_sql += ("\n        caps AS (SELECT " + ", ".join(f"c{i}.cap AS cap{i}" for i in capped)
                     + " FROM " + " CROSS JOIN ".join(f"c{i}" for i in capped) + "),")
    materialized = "MATERIALIZED " if capped and d.pg else ""
    cap_out = "".join(f", MAX(cap{i})" for i in capped)
    seg = ", x.segment" if segment_by else ""
    seg_out = "segment" if segment_by else "NULL"
    group = "variant_id, segment" if segment_by else "variant_id"
    sums = ", ".join(f"SUM(v{i})" for i in range(k))
    products = ", ".join(f"SUM({d.as_float(f'v{a} * v{b}')})" for a, b in pairs)
    # A LEFT JOIN with the exposures outside: PostgreSQL then splits the exposed users
    # between its parallel workers and hashes the events, so each worker aggregates a
    # disjoint third of the users (an inner join hashed the users instead, and every
    # worker's per-user hash table held nearly all of them: 25% slower at 10M events).
    sql = f"""{sources},
        u AS (
            SELECT x.variant_id{seg},
                {per_user}
            FROM x LEFT JOIN e ON e.user_id = x.user_id AND {_join_condition(variables, d)}
            GROUP BY x.variant_id, x.user_id{seg}
        ),{caps_sql}
        w AS {materialized}(SELECT variant_id{", segment" if segment_by else ""}, {values} FROM u{cap_joins})
        SELECT variant_id, {seg_out}, COUNT(*), {sums}{", " if pairs else ""}{products}{cap_out}
        FROM w GROUP BY {group}"""
    totals: dict[tuple, np.ndarray] = {}
    out = VariantMoments()
    # Without JIT: compiling the capped query's many expressions in every parallel worker
    # cost more than it saved (at 3M events, 3.5 s uncapped, 6.9 s capped with JIT, 3.6 s
    # capped without; uncapped without JIT 3.2 s).
    for row in _run(using, sql, params, jit=not capped):
        key = (row[0], None if row[1] is None else str(row[1]))
        width = len(row) - len(capped)
        totals[key] = np.array([float(v or 0) for v in row[2:width]])
        # Every row carries the same pooled caps.
        out.caps = {i: None if c is None else float(c) for i, c in zip(capped, row[width:], strict=True)}
    for key, vec in totals.items():
        q = np.full((k, k), np.nan)
        for (a, b), value in zip(pairs, vec[1 + k:], strict=True):
            q[a, b] = q[b, a] = value
        out[key] = Moments(int(vec[0]), tuple(vec[1:1 + k]), tuple(map(tuple, q)))
    return out


class VariantMoments(dict):
    """variant_moments' answer: a dict of Moments, with the caps it applied."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.caps: dict[int, float | None] = {}


def _caps(variables: list[Variable], capped: list[int], d: _Dialect) -> tuple[str, list]:
    """CTEs per capped variable, ending in c{i}: one row, its cap, the percentile of the
    pooled per-user values above 0 (every variant and segment together), interpolated
    between closest ranks as PostgreSQL's percentile_cont and numpy's default do: with the
    m + 1 values sorted, v_(r) at ranks r = 0..m, the cap at h = m·p is
    v_(⌊h⌋) + (h − ⌊h⌋)·(v_(⌊h⌋+1) − v_(⌊h⌋)); no values: NULL.

    The same text in both dialects (SQLite has no percentile function): the users are
    first grouped by value (g: each distinct count and how many users have it, a hash
    aggregate), and the ranks each value spans ([start, cum)) come from a running sum
    over those few rows, rather than a sort of every user per variable (which cost 20%
    of the query at 1M events)."""
    sql, params = "", []
    for i in capped:
        total, running = d.as_float("SUM(k) OVER ()"), d.as_float("SUM(k) OVER (ORDER BY v)")
        sql += f"""
        g{i} AS (SELECT v{i} AS v, COUNT(*) AS k FROM u WHERE v{i} > 0 GROUP BY v{i}),
        r{i} AS (SELECT v, {running} AS cum, {running} - k AS start, ({total} - 1) * {d.as_float('%s')} AS h
                 FROM g{i}),
        q{i} AS (SELECT v, cum, start, h, {d.floor('h')} AS f FROM r{i}),
        c{i} AS (
            SELECT lo + (h - f) * (COALESCE(hi, lo) - lo) AS cap FROM (
                SELECT MAX(CASE WHEN start <= f AND f < cum THEN v END) AS lo,
                       MAX(CASE WHEN start <= f + 1 AND f + 1 < cum THEN v END) AS hi,
                       MAX(h) AS h, MAX(f) AS f
                FROM q{i}) placed
        ),"""
        params.append(float(variables[i].cap_percentile) / 100.0)
    return sql, params


def _capped_value(v: Variable, i: int, capped: bool) -> str:
    column = f"v{i}"
    if not capped:
        return _as_value(v, column)
    # A NULL cap (no user above 0) compares as unknown: the value stays.
    return f"(CASE WHEN {column} > cap{i} THEN cap{i} ELSE {column} END)"


@dataclass(frozen=True)
class DailyMoments:
    """Per variant, the cumulative moments of one metric's post variables at the end of each day."""

    days: list[date]
    by_variant: dict[int, list[Moments]]


def daily_moments(experiment_id: int, variables: list[Variable], as_of: datetime,
                  using: str = "default", window: Window = EVERYONE,
                  caps: dict[int, float | None] | None = None) -> DailyMoments:
    """The cumulative moments at the end of each UTC day up to `as_of`, for one or two
    post-exposure variables (a metric's numerator and denominator).

    A user's cumulative count only changes on days with events, so the query returns,
    per variant and day, the change in Σv and Σv_i·v_j those user-days make (from the
    running per-user totals and their previous values); Python adds them up.

    `caps` ({position in `variables`: cap}) winsorizes each user's cumulative count at
    the cap the day's analysis applied (variant_moments' caps), so the series ends
    where the capped report stands."""
    if not 1 <= len(variables) <= 2 or any(v.pre_days for v in variables):
        raise ValueError("daily moments take one metric's post-exposure variables")
    conn = connections[using]
    d = _Dialect(conn.vendor)
    with conn.cursor() as cursor:
        since = _earliest_event_needed(cursor, d, experiment_id, variables, window)
    if since is None:
        return DailyMoments([], {})
    sources, params = _sources(d, variables, experiment_id, as_of, since, None, post_only=True, window=window)
    k = len(variables)
    names = ["a", "b"][:k]
    filters = _filters(variables)
    per_day = ", ".join(f"{_per_user_expression(v, d, filters)} AS {n}" for v, n in zip(variables, names, strict=True))
    over = "OVER (PARTITION BY xid ORDER BY day)"
    caps = {i: c for i, c in (caps or {}).items() if c is not None and not variables[i].any}
    cap_params: list = []
    running_parts = []
    for i, (v, n) in enumerate(zip(variables, names, strict=True)):
        total = f"{'MAX' if v.any else 'SUM'}({_as_value(v, n)}) {over}"
        if i in caps:
            cap = d.as_float("%s")
            total = f"(CASE WHEN {total} > {cap} THEN {cap} ELSE {total} END)"
            cap_params += [float(caps[i]), float(caps[i])]
        running_parts.append(f"{total} AS c{n}")
    running = ", ".join(running_parts)
    lagged = ", ".join(f"c{n}, COALESCE(LAG(c{n}) {over}, 0) AS p{n}" for n in names)
    pair_names = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    deltas = ", ".join([f"SUM(c{n} - p{n})" for n in names]
                       + [f"SUM({d.as_float(f'c{a} * c{b} - p{a} * p{b}')})" for a, b in pair_names])
    # Event rows carry the changes and a NULL count; exposure rows zeros and their count.
    sql = f"""{sources},
        ud AS (
            SELECT x.xid, x.variant_id, {d.day('e.t')} AS day, {per_day}
            FROM x JOIN e ON e.user_id = x.user_id AND e.t >= x.t0
            GROUP BY x.xid, x.variant_id, {d.day('e.t')}
        ),
        c AS (SELECT xid, variant_id, day, {running} FROM ud),
        p AS (SELECT variant_id, day, {lagged} FROM c)
        SELECT variant_id, day, {deltas}, NULL FROM p GROUP BY variant_id, day
        UNION ALL
        SELECT variant_id, {d.day('t0')} AS day, {", ".join(["0"] * (k + len(pair_names)))}, COUNT(*)
        FROM x GROUP BY variant_id, {d.day('t0')}"""
    rows = _run(using, sql, params + cap_params)
    changes: dict[int, dict[date, np.ndarray]] = defaultdict(dict)
    for variant_id, day, *values in rows:
        day = day if isinstance(day, date) else date.fromisoformat(str(day))
        vec = np.array([float(v or 0) for v in values])
        slot = changes[variant_id].setdefault(day, np.zeros(len(vec)))
        slot += vec
    seen = sorted({day for per in changes.values() for day in per})
    # Every day from the first exposure to the analysis day: a day without events still
    # has its (unchanged) cumulative point, as the chart and the next carried-over series expect.
    last_day = max([as_of.astimezone(UTC).date(), *seen[-1:]])
    days = [seen[0] + timedelta(days=i) for i in range((last_day - seen[0]).days + 1)] if seen else []
    out = {}
    for variant_id, per in changes.items():
        total = np.zeros(k + len(pair_names) + 1)
        series = []
        for day in days:
            total = total + per.get(day, 0)
            q = np.zeros((k, k))
            for (a, b), value in zip(pair_names, total[k:k + len(pair_names)], strict=True):
                i, j = names.index(a), names.index(b)
                q[i, j] = q[j, i] = value
            series.append(Moments(int(total[-1]), tuple(total[:k]), tuple(map(tuple, q))))
        out[variant_id] = series
    return DailyMoments(days, out)


# --- A baseline before launch -------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The moments of the per-user variables of the users with events in [since, until),
    and on how many UTC days of that span there were events."""

    moments: Moments | None
    days_with_events: int


def baseline_moments(variables: list[Variable], pairs: list[tuple[int, int]], since: datetime, until: datetime,
                     using: str = "default") -> Baseline:
    """As variant_moments, for the users who had any event in [since, until) rather than
    an experiment's exposed users: each user's first event there stands for the exposure
    (t0), and the variables count their events from it (within a metric's window) up to
    `until`; capped variables at their percentile among these users. For a power plan
    before launch: what the metric looked like on the surface, measured as the analysis
    will measure it. Post-exposure variables only. Events carry no surface: every event
    is the closeup surface's, the one surface there is."""
    if not variables or any(v.pre_days for v in variables):
        raise ValueError("a baseline takes post-exposure variables")
    conn = connections[using]
    d = _Dialect(conn.vendor)
    k = len(variables)
    # The day is there already (for the count of days with events); the rest as the analysis has them.
    columns, column_params = _event_columns([replace(v, measure=COUNT if v.measure == DAYS else v.measure)
                                             for v in variables], d)
    filters = _filters(variables)
    per_user = ",\n                ".join(f"{_per_user_expression(v, d, filters)} AS v{i}"
                                      for i, v in enumerate(variables))
    capped = [i for i, v in enumerate(variables) if v.cap_percentile is not None]
    caps_sql, cap_params = _caps(variables, capped, d)
    values = ", ".join(f"{_capped_value(v, i, i in capped)} AS v{i}" for i, v in enumerate(variables))
    cap_joins = " CROSS JOIN caps" if capped else ""
    if capped:
        caps_sql += ("\n        caps AS (SELECT " + ", ".join(f"c{i}.cap AS cap{i}" for i in capped)
                     + " FROM " + " CROSS JOIN ".join(f"c{i}" for i in capped) + "),")
    sums = ", ".join(f"SUM(v{i})" for i in range(k))
    products = ", ".join(f"SUM({d.as_float(f'v{a} * v{b}')})" for a, b in pairs)
    sql = f"""
        WITH e AS (
            SELECT user_id, {_type_code_sql()} AS ty, {d.time('occurred_at')} AS t, {d.day('occurred_at')} AS day
                {columns}
            FROM experiments_event
            WHERE occurred_at >= %s AND occurred_at < %s
        ),
        x0 AS (SELECT user_id, MIN(t) AS t0 FROM e GROUP BY user_id),
        x AS (SELECT x0.*{_bounds(variables, d)} FROM x0),
        u AS (
            SELECT x.user_id,
                {per_user}
            FROM x JOIN e ON e.user_id = x.user_id
            GROUP BY x.user_id
        ),{caps_sql}
        w AS (SELECT {values} FROM u{cap_joins})
        SELECT COUNT(*), (SELECT COUNT(DISTINCT day) FROM e), {sums}{", " if pairs else ""}{products}
        FROM w"""
    [row] = _run(using, sql, [*column_params, d.time_value(since), d.time_value(until), *cap_params])
    n, days = int(row[0] or 0), int(row[1] or 0)
    if n == 0:
        return Baseline(None, days)
    vec = np.array([float(v or 0) for v in row[2:]])
    q = np.full((k, k), np.nan)
    for (a, b), value in zip(pairs, vec[k:], strict=True):
        q[a, b] = q[b, a] = value
    return Baseline(Moments(n, tuple(vec[:k]), tuple(map(tuple, q))), days)


# --- Interleaving: credited engagements per team ------------------------------------

CREDITED_TYPES = ("click", "save")


@dataclass(frozen=True)
class DailyPreferences:
    """Per UTC day up to the analysis, the cumulative counts of users by the team they
    preferred, (wins_control, wins_treatment, ties, uncredited engagements)."""

    days: list[date]
    counts: list[tuple[int, int, int, int]]


def preference_counts(experiment_id: int, control_id: int, treatment_id: int, as_of: datetime,
                      using: str = "default", window: Window = EVERYONE) -> DailyPreferences:
    """The interleaving statistic's sufficient statistics, in the database, for every day.

    Each click or save by an exposed user after their first exposure is credited to the
    team that placed the item: the served impression of the same request (and user) at
    the engagement's position, or, without a position, of the same pin; only impressions
    labelled with one of the experiment's two variants count. An engagement with no such
    impression (no request id, a position outside the list served, a request that was not
    merged) is uncredited. A user's state after each day with engagements is which team
    their cumulative credits favour (or a tie); the query returns per day how many users
    entered and left each state, and Python adds the days up. No event row reaches Python."""
    conn = connections[using]
    d = _Dialect(conn.vendor)
    with conn.cursor() as cursor:
        since = _earliest_event_needed(cursor, d, experiment_id, [], window)
    if since is None:
        return DailyPreferences([], [])
    window_sql, window_params = window.sql(d)
    types = _types_sql(CREDITED_TYPES)
    states = {"t": 1, "c": 2, "tie": 3}
    moved = ", ".join(f"SUM(CASE WHEN s = {v} THEN 1 ELSE 0 END) - SUM(CASE WHEN prev = {v} THEN 1 ELSE 0 END)"
                      for v in states.values())
    sql = f"""
        WITH x AS (
            SELECT user_id, {d.time('first_exposed_at')} AS t0
            FROM experiments_exposure
            WHERE experiment_id = %s AND NOT forced AND first_exposed_at <= %s{window_sql}
        ),
        eng AS (
            SELECT e.user_id, e.request_id, e.position, e.pin_id, {d.day('e.occurred_at')} AS day
            FROM experiments_event e JOIN x ON x.user_id = e.user_id
            WHERE e.occurred_at >= %s AND e.occurred_at <= %s AND e.type IN ({types})
              AND {d.time('e.occurred_at')} >= x.t0
        ),
        credited AS (
            SELECT eng.user_id, eng.day, i.team
            FROM eng LEFT JOIN experiments_event i
              ON i.request_id = eng.request_id AND i.user_id = eng.user_id AND i.type = 'impression'
             AND i.team IN (%s, %s) AND i.occurred_at >= %s AND i.occurred_at <= %s
             AND ((eng.position IS NOT NULL AND i.position = eng.position)
                  OR (eng.position IS NULL AND i.pin_id = eng.pin_id))
        ),
        ud AS (
            SELECT user_id, day,
                   SUM(CASE WHEN team = %s THEN 1 ELSE 0 END) AS c,
                   SUM(CASE WHEN team = %s THEN 1 ELSE 0 END) AS t,
                   SUM(CASE WHEN team IS NULL THEN 1 ELSE 0 END) AS unc
            FROM credited GROUP BY user_id, day
        ),
        cum AS (
            SELECT user_id, day, unc,
                   SUM(c) OVER (PARTITION BY user_id ORDER BY day) AS cc,
                   SUM(t) OVER (PARTITION BY user_id ORDER BY day) AS ct
            FROM ud
        ),
        st AS (
            SELECT user_id, day, unc,
                   CASE WHEN cc + ct = 0 THEN 0 WHEN ct > cc THEN {states['t']} WHEN cc > ct THEN {states['c']}
                        ELSE {states['tie']} END AS s
            FROM cum
        ),
        ch AS (SELECT day, unc, s, COALESCE(LAG(s) OVER (PARTITION BY user_id ORDER BY day), 0) AS prev FROM st)
        SELECT day, {moved}, SUM(unc) FROM ch GROUP BY day ORDER BY day"""
    since_v, as_of_v = d.time_value(since), d.time_value(as_of)
    params = [experiment_id, as_of_v, *window_params, since_v, as_of_v, control_id, treatment_id, since_v, as_of_v,
              control_id, treatment_id]
    changes = {}
    for day, *values in _run(using, sql, params):
        changes[day if isinstance(day, date) else date.fromisoformat(str(day))] = [int(v or 0) for v in values]
    if not changes:
        return DailyPreferences([], [])
    first, last = min(changes), max(max(changes), as_of.astimezone(UTC).date())
    days, counts, total = [], [], [0, 0, 0, 0]
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        total = [a + b for a, b in zip(total, changes.get(day, (0, 0, 0, 0)), strict=True)]
        t, c, tie, unc = total
        days.append(day)
        counts.append((c, t, tie, unc))
    return DailyPreferences(days, counts)
