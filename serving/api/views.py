"""GET /api/v1/closeup/<pin_id>: parse, call serving.closeup.serve_closeup, render."""

from dataclasses import asdict

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.api.client import ClientView
from core.api.exceptions import FieldErrors
from experiments.assignment import MAX_USER_ID
from serving.api.serializers import CloseupResponseSerializer
from serving.closeup import NoModelsBuilt, UnknownPin, serve_closeup

MAX_K = 100


def parse_query(request) -> tuple[str, int]:
    errors = {}
    user_id = request.query_params.get("user_id", "")
    if not user_id.strip() or len(user_id) > MAX_USER_ID:
        errors["user_id"] = [f"Required: a non-empty string of at most {MAX_USER_ID} characters."]
    raw_k = request.query_params.get("k", "25")
    try:
        k = int(raw_k)
        if not 1 <= k <= MAX_K:
            raise ValueError
    except ValueError:
        errors["k"] = [f"Must be an integer from 1 to {MAX_K}."]
        k = 0
    if errors:
        raise FieldErrors(errors)
    return user_id, k


class CloseupView(ClientView):
    @extend_schema(
        summary="Related pins for a closeup, from the user's variant",
        parameters=[OpenApiParameter("user_id", str, required=True),
                    OpenApiParameter("k", int, description=f"1..{MAX_K}, default 25")],
        responses={200: CloseupResponseSerializer, 400: OpenApiResponse(description="field errors"),
                   404: OpenApiResponse(description="unknown pin"),
                   503: OpenApiResponse(description="no recommender has been built yet")},
    )
    def get(self, request, pin_id: int):
        user_id, k = parse_query(request)
        try:
            closeup = serve_closeup(pin_id, user_id, k, attributes={})
        except NoModelsBuilt:
            return Response({"detail": "No recommender has been built yet: run manage.py build_recommenders."},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})
        except UnknownPin:
            return Response({"detail": f"Unknown pin {pin_id}."}, status=status.HTTP_404_NOT_FOUND)
        return Response(asdict(closeup))
