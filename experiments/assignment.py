"""Assignment: which variant of which experiment a user sees. Pure: no Django import.

Definitions (docs/assignment.md states them with examples):

    bucket_for(unit_id, salt) = xxh3_64(utf8(salt + ":" + unit_id)) mod 10,000

A layer hashes the user with the layer's salt; the experiment owning that bucket (a
half-open slice [start, end) of the layer) is the only candidate in the layer. Inside
it, two more hashes, each with the experiment's salt and a purpose suffix, decide
whether the user is in the traffic sample (``salt:traffic``, bucket < percent * 100)
and which variant (``salt:variant``, looked up in the variant allocation). Because
the three hashes are independent and fixed at creation, ramping traffic up only
adds users, and never moves one between variants.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import xxhash

BUCKETS = 10_000
# The longest user id accepted anywhere (assignment, exposures, events): the columns' length.
MAX_USER_ID = 255
USER_ID_RULE = f"Must be a non-empty string of at most {MAX_USER_ID} characters, without NUL."


def storable_text(value) -> bool:
    """PostgreSQL's text and jsonb cannot hold NUL (nor lone surrogates): refused at the
    door, not found when a batch of exposures fails to insert."""
    if not isinstance(value, str):
        return True
    return "\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value)


def user_id_errors(user_id) -> list[str]:
    """The one rule for a user id, worded the same by every endpoint that takes one. NUL
    is refused because PostgreSQL text cannot hold it."""
    if user_id is None:
        return ["This field is required."]
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_USER_ID or "\x00" in user_id:
        return [USER_ID_RULE]
    return []
_hash = xxhash.xxh3_64_intdigest


def bucket_for(unit_id: str, salt: str) -> int:
    """The bucket in [0, 10,000) of a unit under a salt; stable across processes."""
    return _hash(f"{salt}:{unit_id}".encode()) % BUCKETS


# --- Variant allocation ------------------------------------------------------------
# The variant bucket space [0, 10,000) is split into ranges, each owned by a variant.
# Changing weights hands buckets over from the variants that shrink to the ones that
# grow and touches no other bucket, so the share of users who move is exactly the
# total variation distance between the old and new weights: the least possible.

Allocation = tuple[tuple[int, int, str], ...]  # (start, end, variant key), sorted, covering [0, BUCKETS)


def bucket_counts(weights: Mapping[str, float]) -> dict[str, int]:
    """Weights (summing to 100) to whole bucket counts summing to BUCKETS, by largest remainder."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    exact = {k: w * BUCKETS / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    short = BUCKETS - sum(counts.values())
    for key in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[:short]:
        counts[key] += 1
    return counts


def initial_allocation(weights: Mapping[str, float]) -> Allocation:
    ranges, start = [], 0
    for key, count in bucket_counts(weights).items():
        if count:
            ranges.append((start, start + count, key))
        start += count
    return tuple(ranges)


def rebalance(allocation: Allocation, weights: Mapping[str, float]) -> Allocation:
    """The allocation for new weights that moves the fewest buckets from `allocation`."""
    target = bucket_counts(weights)
    owned: dict[str, list[tuple[int, int]]] = {}
    for start, end, key in allocation:
        owned.setdefault(key, []).append((start, end))
    free: list[tuple[int, int]] = []
    kept: list[tuple[int, int, str]] = []
    for key, spans in owned.items():
        surplus = sum(e - s for s, e in spans) - target.get(key, 0)
        # Give up buckets from the end of the variant's last ranges.
        for s, e in reversed(spans):
            if surplus <= 0:
                kept.append((s, e, key))
                continue
            give = min(surplus, e - s)
            if e - give > s:
                kept.append((s, e - give, key))
            free.append((e - give, e))
            surplus -= give
    free.sort()
    have = {key: 0 for key in target}
    for s, e, key in kept:
        have[key] += e - s
    for key in target:
        need = target[key] - have[key]
        while need > 0:
            s, e = free.pop(0)
            take = min(need, e - s)
            kept.append((s, s + take, key))
            if s + take < e:
                free.insert(0, (s + take, e))
            need -= take
    return _merge(sorted(kept))


def _merge(ranges: Iterable[tuple[int, int, str]]) -> Allocation:
    merged: list[tuple[int, int, str]] = []
    for s, e, key in ranges:
        if merged and merged[-1][2] == key and merged[-1][1] == s:
            merged[-1] = (merged[-1][0], e, key)
        else:
            merged.append((s, e, key))
    return tuple(merged)


def allocation_shares(allocation: Allocation) -> dict[str, float]:
    shares: dict[str, float] = {}
    for s, e, key in allocation:
        shares[key] = shares.get(key, 0.0) + (e - s) / BUCKETS
    return shares


# --- Targeting ---------------------------------------------------------------------
# A rule is {} (everyone), a condition {"attribute", "op", "value"}, or a combination
# {"all": [rules]}, {"any": [rules]}, {"not": rule}. A missing attribute is null, as
# in GrowthBook: it fails eq, in and the comparisons, and passes ne and not_in.

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte")
_MISSING = object()


def validate_targeting(rule, path: str = "targeting") -> list[str]:
    """Every problem with a targeting rule, as messages naming where it is."""
    if not isinstance(rule, dict):
        return [f"{path}: must be an object"]
    if not rule:
        return []
    combinators = [k for k in ("all", "any", "not") if k in rule]
    if combinators:
        if len(rule) != 1:
            return [f"{path}: a combination has exactly one key (all, any or not)"]
        key = combinators[0]
        if key == "not":
            return validate_targeting(rule["not"], f"{path}.not")
        if not isinstance(rule[key], list) or not rule[key]:
            return [f"{path}.{key}: must be a non-empty list of rules"]
        errors: list[str] = []
        for i, sub in enumerate(rule[key]):
            errors += validate_targeting(sub, f"{path}.{key}[{i}]")
        return errors
    errors = []
    if set(rule) != {"attribute", "op", "value"}:
        return [f"{path}: a condition has exactly the keys attribute, op and value"]
    if not isinstance(rule["attribute"], str) or not rule["attribute"]:
        errors.append(f"{path}.attribute: must be a non-empty string")
    op, value = rule["op"], rule["value"]
    if op not in OPERATORS:
        errors.append(f"{path}.op: must be one of {', '.join(OPERATORS)}")
    elif op in ("in", "not_in") and not isinstance(value, list):
        errors.append(f"{path}.value: {op} needs a list")
    elif op in ("gt", "gte", "lt", "lte") and (isinstance(value, bool) or not isinstance(value, int | float)):
        errors.append(f"{path}.value: {op} needs a number")
    return errors


def matches(rule: Mapping, attributes: Mapping) -> bool:
    if not rule:
        return True
    if "all" in rule:
        return all(matches(r, attributes) for r in rule["all"])
    if "any" in rule:
        return any(matches(r, attributes) for r in rule["any"])
    if "not" in rule:
        return not matches(rule["not"], attributes)
    actual = attributes.get(rule["attribute"], _MISSING)
    op, value = rule["op"], rule["value"]
    if op == "eq":
        return actual is not _MISSING and actual == value
    if op == "ne":
        return actual is _MISSING or actual != value
    if op == "in":
        return actual is not _MISSING and _hashable_in(actual, value)
    if op == "not_in":
        return actual is _MISSING or not _hashable_in(actual, value)
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    if op == "gt":
        return actual > value
    if op == "gte":
        return actual >= value
    if op == "lt":
        return actual < value
    return actual <= value


def _hashable_in(actual, values: Sequence) -> bool:
    try:
        return actual in values
    except TypeError:
        return False


# --- The running configuration ------------------------------------------------------


@dataclass(frozen=True)
class VariantConfig:
    id: int
    key: str
    recommender: Mapping
    is_control: bool = False


@dataclass(frozen=True)
class ExperimentConfig:
    id: int
    key: str
    layer: str
    salt: str
    bucket_start: int
    bucket_end: int
    traffic_percent: float
    allocation: Allocation
    variants: Mapping[str, VariantConfig]
    targeting: Mapping = field(default_factory=dict)
    forced: Mapping[str, str] = field(default_factory=dict)  # user id -> variant key
    stage: str = "whole"  # the layer's: what of the closeup list the variant decides
    design: str = "ab"  # "interleaving": every user sees both variants' lists merged
    # Derived: the traffic threshold and the allocation's range starts, for bisect.
    _traffic_threshold: int = field(init=False, repr=False, compare=False)
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _traffic_salt: str = field(init=False, repr=False, compare=False)
    _variant_salt: str = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_traffic_threshold", round(self.traffic_percent * BUCKETS / 100))
        object.__setattr__(self, "_starts", tuple(s for s, _, _ in self.allocation))
        object.__setattr__(self, "_traffic_salt", f"{self.salt}:traffic")
        object.__setattr__(self, "_variant_salt", f"{self.salt}:variant")

    def variant_for(self, unit_id: str) -> str:
        b = bucket_for(unit_id, self._variant_salt)
        return self.allocation[bisect.bisect_right(self._starts, b) - 1][2]

    def in_traffic(self, unit_id: str) -> bool:
        return bucket_for(unit_id, self._traffic_salt) < self._traffic_threshold


@dataclass(frozen=True)
class LayerConfig:
    key: str
    salt: str
    experiments: tuple[ExperimentConfig, ...]  # sorted by bucket_start, slices disjoint
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_starts", tuple(e.bucket_start for e in self.experiments))

    def experiment_for_bucket(self, bucket: int) -> ExperimentConfig | None:
        i = bisect.bisect_right(self._starts, bucket) - 1
        if i >= 0 and bucket < self.experiments[i].bucket_end:
            return self.experiments[i]
        return None


@dataclass(frozen=True)
class HoldoutConfig:
    salt: str
    percent: float
    # The surface defaults when the holdout started (per stage), served to the held-back
    # users for the holdout's whole life, and the experiment that measures it: variant
    # ids of the held-back users and of everyone else. None for a holdout kept from
    # before holdouts were measured.
    defaults: Mapping[str, Mapping] = field(default_factory=dict)
    experiment_id: int | None = None
    held_back_variant_id: int | None = None
    launched_variant_id: int | None = None

    def holds_out(self, unit_id: str) -> bool:
        return bucket_for(unit_id, self.salt) < round(self.percent * BUCKETS / 100)


@dataclass(frozen=True)
class RolloutConfig:
    """A shipped config on its way to everyone: users whose bucket under the rollout's
    salt is below the current step's percent get it, the rest the stage's default. A
    step up only adds users, as a traffic ramp does."""

    salt: str
    percent: float
    recommender: Mapping

    def includes(self, unit_id: str) -> bool:
        return bucket_for(unit_id, self.salt) < round(self.percent * BUCKETS / 100)


@dataclass(frozen=True)
class SurfaceConfig:
    layers: tuple[LayerConfig, ...]
    holdout: HoldoutConfig | None = None
    # Forced users bypass layers, holdout, targeting and traffic: QA must see the variant.
    forced: Mapping[str, tuple[tuple[ExperimentConfig, str], ...]] = field(default_factory=dict)
    # What users in no experiment are served, per stage: {"whole"|"retrieval"|"ranking": {"name", "params"}}.
    defaults: Mapping[str, Mapping] = field(default_factory=dict)
    rollouts: Mapping[str, RolloutConfig] = field(default_factory=dict)  # per stage

    def defaults_for(self, unit_id: str) -> dict:
        """The stored defaults this user is served: the held-back ones for a user in the
        holdout, else today's, with any rollout that already includes the user. A whole
        list being rolled out replaces the stage defaults for its users, as its ship will."""
        if self.holdout is not None and self.holdout.holds_out(unit_id):
            return dict(self.holdout.defaults)
        defaults = dict(self.defaults)
        for stage, rollout in sorted(self.rollouts.items(), key=lambda item: item[0] != "whole"):
            if rollout.includes(unit_id):
                if stage == "whole":
                    defaults = {}
                defaults[stage] = rollout.recommender
        return defaults


@dataclass(frozen=True)
class AssignmentConfig:
    version: int
    surfaces: Mapping[str, SurfaceConfig]


@dataclass(frozen=True)
class Assignment:
    experiment: ExperimentConfig
    variant: str
    forced: bool = False


EMPTY_SURFACE = SurfaceConfig(layers=())


def assign(config: AssignmentConfig, surface: str, unit_id: str, attributes: Mapping) -> list[Assignment]:
    """The user's assignments on a surface: at most one experiment per layer."""
    surface_config = config.surfaces.get(surface, EMPTY_SURFACE)
    result: list[Assignment] = []
    forced_here = surface_config.forced.get(unit_id)
    forced_layers = set()
    if forced_here:
        for experiment, variant in forced_here:
            result.append(Assignment(experiment, variant, forced=True))
            forced_layers.add(experiment.layer)
    holdout = surface_config.holdout
    if holdout is not None and holdout.holds_out(unit_id):
        return result
    for layer in surface_config.layers:
        if layer.key in forced_layers:
            continue
        experiment = layer.experiment_for_bucket(bucket_for(unit_id, layer.salt))
        if experiment is None:
            continue
        if experiment.targeting and not matches(experiment.targeting, attributes):
            continue
        if not experiment.in_traffic(unit_id):
            continue
        result.append(Assignment(experiment, experiment.variant_for(unit_id)))
    return result


def build_surface(
    layers: Sequence[tuple[str, str, Sequence[ExperimentConfig]]],
    holdout: HoldoutConfig | None = None,
) -> SurfaceConfig:
    """A surface from (layer key, layer salt, experiments); experiments' slices must not overlap."""
    layer_configs = []
    forced: dict[str, list[tuple[ExperimentConfig, str]]] = {}
    for key, salt, experiments in layers:
        ordered = tuple(sorted(experiments, key=lambda e: e.bucket_start))
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.bucket_start < a.bucket_end:
                raise ValueError(f"experiments {a.key} and {b.key} overlap in layer {key}")
        layer_configs.append(LayerConfig(key=key, salt=salt, experiments=ordered))
        for experiment in ordered:
            for user_id, variant in experiment.forced.items():
                forced.setdefault(user_id, []).append((experiment, variant))
    return SurfaceConfig(
        layers=tuple(layer_configs), holdout=holdout, forced={u: tuple(v) for u, v in forced.items()}
    )
