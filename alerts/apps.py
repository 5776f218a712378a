from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        from alerts import receivers  # in ready(): it imports the models

        receivers.connect()
