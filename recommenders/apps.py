from django.apps import AppConfig

from experiments import references


class RecommendersConfig(AppConfig):
    name = "recommenders"

    def ready(self):
        # In ready(), not at module level: the registry loads every recommender and its
        # libraries (LightGBM, implicit, usearch), which settings loading should not pay for.
        from recommenders.registry import validate_config
        from recommenders.selectors import model_versions

        # Variants name recommenders and may pin their versions: experiments checks them through these.
        references.register_recommender_check(validate_config)
        references.register_version_lookup(model_versions)
