import pytest

from experiments.exposures import buffer, impressions
from experiments.runtime import holder as config_holder
from recommenders import services
from recommenders.serving import holder as models_holder
from recommenders.synthetic import generate_world


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    settings.RECOMMENDER_RELOAD_CHECK_SECONDS = 0
    return settings.RECOMMENDER_MODELS_DIR


@pytest.fixture
def world(db):
    w = generate_world(n_pins=600, n_users=150, n_topics=6, seed=5)
    services.import_world(w)
    return w


@pytest.fixture
def built(world, models_dir):
    # The fast ones; the learned recommenders have tests of their own.
    rows = services.build_all(["popularity", "board_cooccurrence", "pixie"])
    return rows[0].version


@pytest.fixture(autouse=True)
def _fresh_serving_state():
    for h in (models_holder, config_holder):
        h.invalidate()
    buffer.clear()
    impressions.clear()
    yield
    for h in (models_holder, config_holder):
        h.invalidate()
    buffer.clear()
    impressions.clear()
