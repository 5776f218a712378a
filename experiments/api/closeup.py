"""GET /api/v1/closeup/<pin_id>: assign the user, ask the variant's recommender for the
grid, fall back to the default recommender when it fails or is too slow, and log one
served impression per item."""

import concurrent.futures
import logging
import time
import uuid
from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from core.outage import DATABASE_UNREACHABLE, retry_at
from experiments.api.validation import MAX_USER_ID, FieldErrors
from experiments.api.views import ClientView, assign_and_record
from experiments.exposures import impressions
from experiments.models import HiddenPin
from experiments.runtime import current_config
from recommenders.serving import current_models

logger = logging.getLogger(__name__)

MAX_K = 100
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="recommend")


class CloseupItemSerializer(serializers.Serializer):
    pin_id = serializers.IntegerField()
    position = serializers.IntegerField()
    score = serializers.FloatField()


class CloseupResponseSerializer(serializers.Serializer):
    request_id = serializers.UUIDField()
    pin_id = serializers.IntegerField()
    user_id = serializers.CharField()
    experiment = serializers.CharField(allow_null=True)
    variant = serializers.CharField(allow_null=True)
    recommender = serializers.CharField(help_text="the recommender that actually served the list")
    fallback_reason = serializers.CharField(allow_null=True)
    hidden_pins_filtered = serializers.BooleanField(
        help_text="false only while the database cannot be read: the user's hidden pins were not filtered out")
    items = CloseupItemSerializer(many=True)


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


_hidden_unreadable_until = 0.0


def hidden_pins(user_id: str) -> set[int] | None:
    """The pins this user hid; None while the database cannot be read. A closeup page
    is worth more than the hide filter during an outage: the grid is served without it
    (the response says so), and the database is asked again only after
    `core.outage.RETRY_SECONDS`."""
    global _hidden_unreadable_until
    if time.monotonic() < _hidden_unreadable_until:
        return None
    try:
        return set(HiddenPin.objects.filter(user_id=user_id).values_list("pin_id", flat=True))
    except DATABASE_UNREACHABLE as exc:
        logger.warning("database unreachable: closeups are served without hidden-pin filtering: %s", exc)
        _hidden_unreadable_until = retry_at()
        return None


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
        models = current_models()
        if models is None:
            return Response({"detail": "No recommender has been built yet: run manage.py build_recommenders."},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})
        pin = models.catalog.pin_index(pin_id)
        if pin is None:
            return Response({"detail": f"Unknown pin {pin_id}."}, status=status.HTTP_404_NOT_FOUND)

        chosen = next(iter(assign_and_record(current_config(), "closeup", user_id, {})), None)
        name, params = settings.DEFAULT_RECOMMENDER, {}
        if chosen is not None:
            config = chosen.experiment.variants[chosen.variant].recommender
            name, params = config.get("name", name), config.get("params", {})

        history = models.catalog.history(user_id)
        hidden = hidden_pins(user_id)
        exclude = [i for p in hidden or () if (i := models.catalog.pin_index(p)) is not None]
        topics = models.user_topics(history)
        items, served_by, reason, error = None, name, None, None
        try:
            # Restoring a recommender with unusual params happens once, outside the deadline.
            recommender = models.recommender(name, params)
            future = _pool.submit(recommender.related, pin, history, k, exclude, topics)
            items = future.result(timeout=settings.RECOMMENDER_TIMEOUT_MS / 1000)
        except concurrent.futures.TimeoutError:
            reason = f"{name} took longer than {settings.RECOMMENDER_TIMEOUT_MS} ms"
        except Exception as exc:  # a broken recommender must not break the closeup page
            reason, error = f"{name} failed: {type(exc).__name__}: {exc}", exc
        if items is None:
            logger.warning("closeup fallback to %s: %s", settings.DEFAULT_RECOMMENDER, reason, exc_info=error)
            served_by = settings.DEFAULT_RECOMMENDER
            items = models.recommender(served_by).related(pin, history, k, exclude, topics)

        request_id = str(uuid.uuid4())
        now = datetime.now(UTC).isoformat()
        pin_ids = models.catalog.pin_ids
        body_items = [{"pin_id": int(pin_ids[i]), "position": pos, "score": round(score, 6)}
                      for pos, (i, score) in enumerate(items)]
        for item in body_items:  # rows in the events table's order (experiments/events.py)
            impressions.add([str(uuid.uuid4()), now, user_id, "impression", item["pin_id"], request_id,
                             item["position"]])
        return Response({
            "request_id": request_id, "pin_id": pin_id, "user_id": user_id,
            "experiment": chosen.experiment.key if chosen else None,
            "variant": chosen.variant if chosen else None,
            "recommender": served_by, "fallback_reason": reason, "hidden_pins_filtered": hidden is not None,
            "items": body_items,
        })
