from tests.experiments.conftest import layer  # noqa: F401  (the experiments' layer fixture)
