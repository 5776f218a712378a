from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import RolePermission
from core.api.client import ClientView
from experiments import holdouts, rollouts, services, surfaces, templates
from experiments.api import serializers as s
from experiments.api.validation import assignment_request, batch_assignment_request
from experiments.exposures import assignments_for, buffer
from experiments.models import SURFACES, ExperimentTemplate, Layer, SurfaceDefault
from experiments.permissions import AdminOnly, OwnerOrAdminWrites
from experiments.runtime import current_config
from experiments.selectors import describe_surface, experiments_for_api

# --- Client API -------------------------------------------------------------------


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
        if "template" in fields:
            fields = templates.apply(fields["template"], set(request.data), fields)
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
        extra = {}
        if self.action == "ship":
            extra = {"rollout": body.validated_data.get("rollout"), "hold_hours": body.validated_data.get("hold_hours")}
        experiment = services.transition(
            experiment, self.action, actor=request.user, variant=body.validated_data.get("variant"), **extra
        )
        return Response(s.ExperimentSerializer(get_object_or_404(experiments_for_api(), pk=experiment.pk)).data)


class RolloutActionView(generics.GenericAPIView):
    """Step a ship's rollout up now (skipping the rest of the hold), or stop it: users not
    yet reached stay on the stage's default, and those reached go back to it."""

    queryset = experiments_for_api()
    serializer_class = s.RolloutSerializer
    permission_classes = [RolePermission, OwnerOrAdminWrites]
    required_permissions = ["experiments.run_experiment"]
    lookup_field = "key"
    action = None

    @extend_schema(request=None, responses={200: s.ExperimentSerializer})
    def post(self, request, key):
        experiment = self.get_object()
        rollouts.act(experiment, self.action, actor=request.user)
        return Response(s.ExperimentSerializer(get_object_or_404(experiments_for_api(), pk=experiment.pk)).data)


class SurfaceView(generics.GenericAPIView):
    """What users in no experiment are served on a surface, per stage, with its history.
    Viewers read; admins change a stage's default (ship changes it too)."""

    queryset = SurfaceDefault.objects.all()
    serializer_class = s.SurfaceDefaultUpdateSerializer

    def get_permissions(self):
        if self.request.method == "PATCH":
            return [RolePermission(), AdminOnly()]
        return super().get_permissions()

    @extend_schema(responses={200: s.SurfaceSerializer})
    def get(self, request, surface):
        _known_surface(surface)
        return Response(describe_surface(surface))

    @extend_schema(request=s.SurfaceDefaultUpdateSerializer, responses={200: s.SurfaceSerializer})
    def patch(self, request, surface):
        _known_surface(surface)
        body = s.SurfaceDefaultUpdateSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        surfaces.set_default(surface=surface, stage=body.validated_data["stage"],
                             recommender=body.validated_data.get("recommender"), actor=request.user,
                             source=f"changed by {request.user.get_username()}")
        return Response(describe_surface(surface))


def _known_surface(surface):
    if surface not in {key for key, _ in SURFACES}:
        raise NotFound(f"Unknown surface {surface!r}.")


class HoldoutView(generics.GenericAPIView):
    """Start (POST {"percent"}) or end (DELETE) the surface's measured holdout. Admins only:
    it changes what a share of every user is served."""

    queryset = SurfaceDefault.objects.none()
    serializer_class = s.HoldoutStartSerializer
    permission_classes = [RolePermission, AdminOnly]

    @extend_schema(request=s.HoldoutStartSerializer, responses={201: s.SurfaceSerializer})
    def post(self, request, surface):
        _known_surface(surface)
        body = s.HoldoutStartSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        holdouts.start(surface=surface, percent=body.validated_data["percent"], actor=request.user)
        return Response(describe_surface(surface), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.SurfaceSerializer})
    def delete(self, request, surface):
        _known_surface(surface)
        holdouts.end(surface=surface, actor=request.user)
        return Response(describe_surface(surface))


TEMPLATE_FIELDS = ("key", "name", "description", "primary_metric", "guardrails", "minimum_detectable_effect",
                   "targeting")


def _template_body(data, fields) -> dict:
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["A JSON object."]})
    unknown = sorted(set(data) - set(TEMPLATE_FIELDS))
    if unknown:
        raise ValidationError({"non_field_errors": [f"Unknown fields: {', '.join(unknown)}."]})
    return {k: data[k] for k in fields if k in data}


class TemplateListView(APIView):
    queryset = ExperimentTemplate.objects.none()  # viewers read, experimenters and admins save

    @extend_schema(summary="Experiment templates", responses=s.TemplateSerializer(many=True))
    def get(self, request):
        return Response(s.TemplateSerializer(ExperimentTemplate.objects.select_related("owner"), many=True).data)

    @extend_schema(summary="Save a template", request=s.TemplateSerializer, responses={201: s.TemplateSerializer})
    def post(self, request):
        body = _template_body(request.data, TEMPLATE_FIELDS)
        checked = s.TemplateSerializer(data={k: v for k, v in body.items() if k in ("key", "name", "description")})
        checked.is_valid(raise_exception=True)
        template = templates.create_template(actor=request.user, **body)
        return Response(s.TemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailView(APIView):
    queryset = ExperimentTemplate.objects.none()

    @extend_schema(summary="One template", responses=s.TemplateSerializer)
    def get(self, request, key):
        return Response(s.TemplateSerializer(get_object_or_404(ExperimentTemplate, key=key)).data)

    @extend_schema(summary="Change a template (experiments made from it keep their copy)",
                   request=s.TemplateSerializer, responses=s.TemplateSerializer)
    def patch(self, request, key):
        template = get_object_or_404(ExperimentTemplate, key=key)
        body = _template_body(request.data, TEMPLATE_FIELDS[1:])
        return Response(s.TemplateSerializer(templates.update_template(template, body)).data)

    @extend_schema(summary="Remove a template", responses={204: None})
    def delete(self, request, key):
        get_object_or_404(ExperimentTemplate, key=key).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
