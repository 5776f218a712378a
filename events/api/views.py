from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.client import ClientView
from events import ingestion, selectors
from events.api import serializers as s
from events.models import EventBatch


class EventsView(ClientView):
    @extend_schema(
        summary="Send impression and engagement events",
        request=s.EventsRequestSerializer,
        responses={
            202: s.EventsResponseSerializer,
            400: OpenApiResponse(description="the batch is unusable (not a list, empty, over 1,000 events)"),
            413: OpenApiResponse(description="body too large"),
            503: OpenApiResponse(description="cannot keep the batch now; retry after Retry-After seconds"),
        },
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict) or "events" not in body:
            return Response({"events": ["This field is required."]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            accepted = ingestion.accept(body["events"], source="api")
        except ValueError as exc:
            return Response({"events": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        except ingestion.IngestionUnavailable:
            # Not "nothing was accepted": a commit cut off by a crash may have reached the disk.
            return Response({"detail": "Cannot accept events right now. Send the same events again later: "
                                       "events already stored are stored once (by event_id and timestamp)."},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
        v = accepted.validated
        if not v.rows and not v.duplicates:
            # Nothing of the batch was kept: not "accepted", and the client must fix it.
            return Response({"events": ["No event in the batch is valid; see rejected."], "accepted": 0,
                             "duplicates": 0, "rejected": v.rejected}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"accepted": len(v.rows), "duplicates": v.duplicates, "rejected": v.rejected},
                        status=status.HTTP_202_ACCEPTED)


class IngestionStatsView(APIView):
    queryset = EventBatch.objects.none()

    @extend_schema(responses=s.IngestionStatsSerializer)
    def get(self, request):
        return Response(selectors.ingestion_stats())
