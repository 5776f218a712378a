from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`make run`'s demo and the traffic tools: seed_demo, serve, simulate, the load
    generator. Tooling, not product: no product app imports it."""

    name = "demo"
    verbose_name = "Pinpoint demo and traffic tools"
