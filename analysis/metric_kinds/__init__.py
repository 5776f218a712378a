"""Metric kinds: one module per kind, registered in `registry.py`. Pure: no Django.

Adding a kind: a module here with a `MetricKind` subclass (its per-user counts, its
value and variance from their moments, its test, its validation), one line in
`registry.py`, its tests in tests/analysis/test_metric_kinds.py, and
`manage.py makemigrations analysis` (the model's choices are recorded in migrations;
the database does not change).
"""
