from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication
from accounts.permissions import HasApiKey, RolePermission
from accounts.roles import ADMIN, roles_of
from accounts.throttling import ApiKeyRateThrottle
from experiments import services
from experiments.api import serializers as s
from experiments.api.validation import assignment_request, batch_assignment_request
from experiments.assignment import Assignment, assign
from experiments.exposures import buffer, record_exposure
from experiments.models import EventBatch, Layer
from experiments.runtime import current_config
from experiments.selectors import experiments_for_api

# --- Client API -------------------------------------------------------------------


def assign_and_record(config, surface: str, user_id: str, attributes: dict) -> list[Assignment]:
    """The user's assignments; records an exposure for each."""
    assignments = assign(config, surface, user_id, attributes)
    for a in assignments:
        record_exposure(a.experiment.id, a.experiment.variants[a.variant].id, user_id, attributes, a.forced)
    return assignments


def assignments_for(config, surface: str, user_id: str, attributes: dict) -> dict:
    """The assignment body for one user; records an exposure for each assignment."""
    return {"user_id": user_id, "assignments": [
        {"experiment": a.experiment.key, "variant": a.variant, "layer": a.experiment.layer,
         "recommender": a.experiment.variants[a.variant].recommender.get("name", "")}
        for a in assign_and_record(config, surface, user_id, attributes)
    ]}


class ClientView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiKeyRateThrottle]


class AssignmentView(ClientView):
    @extend_schema(
        summary="Assign a user",
        request=s.AssignmentRequestSerializer,
        responses={200: s.AssignmentResponseSerializer, 400: OpenApiResponse(description="field errors")},
    )
    def post(self, request):
        surface, user_id, attributes = assignment_request(request.data)
        return Response(assignments_for(current_config(), surface, user_id, attributes))


class BatchAssignmentView(ClientView):
    @extend_schema(
        summary="Assign many users in one call",
        request=s.BatchAssignmentRequestSerializer,
        responses={200: s.BatchAssignmentResponseSerializer, 400: OpenApiResponse(description="field errors")},
    )
    def post(self, request):
        surface, users = batch_assignment_request(request.data, settings.ASSIGNMENT_BATCH_MAX_USERS)
        config = current_config()
        results = [assignments_for(config, surface, user_id, attributes) for user_id, attributes in users]
        buffer.flush(wait=False)  # a batch call is already a batch: write it now
        return Response({"results": results})


# --- Management API ---------------------------------------------------------------


class OwnerOrAdminWrites(permissions.BasePermission):
    """Experimenters change only their own experiments; admins change any."""

    message = "Only the experiment's owner or an admin may change it."

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        user = request.user
        return user.is_superuser or obj.owner_id == user.id or ADMIN in roles_of(user)


class LayerListCreateView(generics.ListCreateAPIView):
    queryset = Layer.objects.prefetch_related("experiments")
    serializer_class = s.LayerSerializer

    def perform_create(self, serializer):
        serializer.instance = services.create_layer(**serializer.validated_data)


class ExperimentListCreateView(generics.ListCreateAPIView):
    queryset = experiments_for_api()
    serializer_class = s.ExperimentSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        if status_ := self.request.query_params.get("status"):
            qs = qs.filter(status=status_)
        return qs

    @extend_schema(request=s.ExperimentCreateSerializer, responses={201: s.ExperimentSerializer})
    def post(self, request, *args, **kwargs):
        data = s.ExperimentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "layer_buckets" in fields:
            fields["layer_buckets"] = tuple(fields["layer_buckets"])
        experiment = services.create_experiment(actor=request.user, **fields)
        return Response(s.ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailView(generics.RetrieveUpdateAPIView):
    queryset = experiments_for_api()
    serializer_class = s.ExperimentSerializer
    permission_classes = [RolePermission, OwnerOrAdminWrites]
    lookup_field = "key"
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(request=s.ExperimentUpdateSerializer, responses={200: s.ExperimentSerializer})
    def patch(self, request, *args, **kwargs):
        experiment = self.get_object()
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = set(request.data) - set(s.ExperimentUpdateSerializer().fields)
        # Fields that never change go on to the service, which owns that rule and its message.
        fixed = {f: request.data[f] for f in unknown & services.NEVER_EDITABLE}
        if unknown - fixed.keys():
            raise ValidationError({f: ["Unknown field."] for f in unknown - fixed.keys()})
        data = s.ExperimentUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {**fixed, **data.validated_data}
        if "layer_buckets" in changes:
            changes["layer_buckets"] = tuple(changes["layer_buckets"])
        experiment = services.update_experiment(experiment, actor=request.user, changes=changes)
        return Response(s.ExperimentSerializer(experiments_for_api().get(pk=experiment.pk)).data)


class ExperimentActionView(generics.GenericAPIView):
    queryset = experiments_for_api()
    serializer_class = s.ShipSerializer
    permission_classes = [RolePermission, OwnerOrAdminWrites]
    required_permissions = ["experiments.run_experiment"]
    lookup_field = "key"
    action = None

    @extend_schema(request=s.ShipSerializer, responses={200: s.ExperimentSerializer})
    def post(self, request, key):
        experiment = self.get_object()
        body = s.ShipSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        experiment = services.transition(
            experiment, self.action, actor=request.user, variant=body.validated_data.get("variant")
        )
        return Response(s.ExperimentSerializer(get_object_or_404(experiments_for_api(), pk=experiment.pk)).data)


# --- Events -------------------------------------------------------------------------


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
        from experiments import ingestion

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
        return Response({"accepted": len(v.rows), "duplicates": v.duplicates, "rejected": v.rejected},
                        status=status.HTTP_202_ACCEPTED)


class IngestionStatsView(APIView):
    queryset = EventBatch.objects.none()

    @extend_schema(responses=s.IngestionStatsSerializer)
    def get(self, request):
        from experiments import ingestion

        return Response(ingestion.stats())
