from django.apps import AppConfig


class RecommendersConfig(AppConfig):
    name = "recommenders"
