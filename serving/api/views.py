"""GET /api/v1/closeup/<pin_id>: parse, call serving.closeup.serve_closeup, render."""

import math
import re
from dataclasses import asdict

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.api.client import ClientView
from core.api.exceptions import FieldErrors
from experiments.assignment import storable_text, user_id_errors
from serving.api.serializers import CloseupResponseSerializer
from serving.closeup import NoModelsBuilt, UnknownPin, serve_closeup

MAX_K = 100
ATTRIBUTE_PREFIX = "attr."
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_VALUE = 256
_NUMBER = re.compile(r"-?[0-9][0-9.e+-]*")


def attribute_value(text: str):
    """A query string value as targeting compares it: true/false as booleans, a number
    written as JSON would write it (30, -2, 40.5) as that number, anything else (02134,
    +5, 1.50, 1_000) as the string, so that `/assignments` with the same JSON values
    assigns the same."""
    if text in ("true", "false"):
        return text == "true"
    if not _NUMBER.fullmatch(text):
        return text
    try:
        if str(int(text)) == text:
            return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) and repr(number) == text else text


def closeup_body(closeup) -> dict:
    """The response document: `team` appears on the items and stages of an interleaved list only."""
    body = asdict(closeup)
    for row in body["items"] + body["served_by"]:
        if row["team"] is None:
            del row["team"]
    return body


def parse_attributes(params, errors: dict) -> dict:
    attributes = {}
    for key, values in params.lists():
        if not key.startswith(ATTRIBUTE_PREFIX):
            continue
        name, value = key[len(ATTRIBUTE_PREFIX):], values[-1]
        if not name or len(name) > MAX_ATTRIBUTE_NAME:
            errors[key[:80]] = [f"An attribute name is 1 to {MAX_ATTRIBUTE_NAME} characters."]
        elif not storable_text(name) or not storable_text(value):
            errors[key[:80]] = ["Names and values must not contain NUL."]
        elif len(value) > MAX_ATTRIBUTE_VALUE:
            errors[key] = [f"An attribute value is at most {MAX_ATTRIBUTE_VALUE} characters."]
        else:
            attributes[name] = attribute_value(value)
    if len(attributes) > MAX_ATTRIBUTES:
        errors["attributes"] = [f"At most {MAX_ATTRIBUTES} attr. parameters; got {len(attributes)}."]
    return attributes


def parse_query(request) -> tuple[str, int, dict]:
    errors = {}
    user_id = request.query_params.get("user_id")
    if messages := user_id_errors(user_id):
        errors["user_id"] = messages
    raw_k = request.query_params.get("k", "25")
    try:
        k = int(raw_k)
        if not 1 <= k <= MAX_K:
            raise ValueError
    except ValueError:
        errors["k"] = [f"Must be an integer from 1 to {MAX_K}."]
        k = 0
    attributes = parse_attributes(request.query_params, errors)
    if errors:
        raise FieldErrors(errors)
    return user_id, k, attributes


class CloseupView(ClientView):
    @extend_schema(
        summary="Related pins for a closeup, from the user's variant",
        parameters=[OpenApiParameter("user_id", str, required=True),
                    OpenApiParameter("k", int, description=f"1..{MAX_K}, default 25"),
                    OpenApiParameter("attr.<name>", str, description=(
                        f"the user's attributes for targeting, one parameter each (at most {MAX_ATTRIBUTES}; "
                        "`true`/`false` read as booleans, numbers as numbers), e.g. attr.country=FR"))],
        responses={200: CloseupResponseSerializer, 400: OpenApiResponse(description="field errors"),
                   404: OpenApiResponse(description="unknown pin"),
                   503: OpenApiResponse(description="no recommender has been built yet")},
    )
    def get(self, request, pin_id: int):
        user_id, k, attributes = parse_query(request)
        try:
            closeup = serve_closeup(pin_id, user_id, k, attributes)
        except NoModelsBuilt:
            return Response({"detail": "No recommender has been built yet: run manage.py build_recommenders."},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})
        except UnknownPin:
            return Response({"detail": f"Unknown pin {pin_id}."}, status=status.HTTP_404_NOT_FOUND)
        return Response(closeup_body(closeup))
