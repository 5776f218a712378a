import orjson
from rest_framework.renderers import JSONRenderer


class FastJSONRenderer(JSONRenderer):
    """DRF's JSON renderer on orjson: the hot client endpoints render small bodies
    many thousand times a second."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, default=_fallback, option=orjson.OPT_NON_STR_KEYS)


def _fallback(value):
    # Decimal, lazy translation strings, UUID subclasses and the like.
    return str(value)
