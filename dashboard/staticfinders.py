"""Serves the chart library that the plotly package ships on PyPI as a local static
file (no CDN): `vendor/plotly.min.js`."""

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage


def _plotly_dir() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data"


FILES = {"vendor/plotly.min.js": "plotly.min.js"}


class VendorFinder(BaseFinder):
    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path in FILES:
            full = str(_plotly_dir() / FILES[path])
            return [full] if find_all else full
        return [] if find_all else None

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=str(_plotly_dir()))
        storage.prefix = "vendor"
        for name in FILES.values():
            yield name, storage
