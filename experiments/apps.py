from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"

    def ready(self):
        from experiments import signals  # in ready(): it imports the models

        signals.connect()
