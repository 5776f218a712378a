from django.apps import AppConfig


class ServingConfig(AppConfig):
    """The closeup as a service: assignment, the variant's recommender under a deadline,
    fallback, the hidden-pin filter and served-impression logging."""

    name = "serving"
