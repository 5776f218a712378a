"""GET /api/v1/recommenders: each registered recommender, what it can serve, and its
built versions (newest first), with the offline numbers where it was evaluated; the
build jobs (builds and retrains on the builds queue); a surface's retrain policy."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.models import SURFACES
from recommenders import jobs, registry, selectors
from recommenders.api.serializers import BuildJobSerializer, RecommenderSerializer, RetrainPolicySerializer
from recommenders.models import BuildJob, ModelVersion, RetrainPolicy
from recommenders.serving import held_bytes


class RecommenderListView(APIView):
    queryset = ModelVersion.objects.none()  # the role's view permission on model versions

    @extend_schema(summary="Recommenders and their built versions", responses=RecommenderSerializer(many=True))
    def get(self, request):
        versions = selectors.versions_by_name()
        evaluations = selectors.latest_offline_ndcg()
        held = held_bytes()
        pinned_by = selectors.experiments_by_version()
        return Response([
            {"name": name, "description": registry.get(name).description, "stages": list(registry.get(name).stages),
             "offline_ndcg_at_10": evaluations.get(name),
             "versions": [{"version": v.version, "built_at": v.built_at, "active": v.is_active, "params": v.params,
                           "build_seconds": v.build_seconds, "size_bytes": v.size_bytes, "metrics": v.metrics,
                           "loaded_bytes": held.get((name, v.version)), "servable": v.servable,
                           "offline": v.offline, "gate": v.gate, "experiments": pinned_by.get((name, v.version), []),
                           "build_job": v.build_job_id}
                          for v in versions.get(name, [])]}
            for name in registry.names()
        ])


class BuildJobListView(APIView):
    queryset = BuildJob.objects.none()  # reading needs view, queueing add (admins) on build jobs

    @extend_schema(summary="Recent build jobs, newest first", responses=BuildJobSerializer(many=True))
    def get(self, request):
        return Response(BuildJobSerializer(selectors.recent_build_jobs(50), many=True).data)

    @extend_schema(summary="Queue a build or a retrain on the builds queue", request=BuildJobSerializer,
                   responses={202: BuildJobSerializer})
    def post(self, request):
        serializer = BuildJobSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                job = jobs.enqueue(serializer.validated_data["kind"], serializer.validated_data["names"])
        except ValueError as exc:
            raise ValidationError({"names": [str(exc)]}) from exc
        return Response(BuildJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class BuildJobDetailView(APIView):
    queryset = BuildJob.objects.none()

    @extend_schema(summary="One build job: its state and progress", responses=BuildJobSerializer)
    def get(self, request, pk: int):
        return Response(BuildJobSerializer(get_object_or_404(BuildJob, pk=pk)).data)


def _surface(surface: str) -> str:
    if surface not in {key for key, _ in SURFACES}:
        raise NotFound(f"Unknown surface {surface!r}.")
    return surface


class RetrainPolicyView(APIView):
    queryset = RetrainPolicy.objects.none()  # changing it needs change (admins) on retrain policies

    @extend_schema(summary="What a retrained version that passes its gate does on this surface",
                   responses=RetrainPolicySerializer)
    def get(self, request, surface: str):
        policy = RetrainPolicy.objects.filter(surface=_surface(surface)).first() or RetrainPolicy(surface=surface)
        return Response(RetrainPolicySerializer(policy).data)

    @extend_schema(summary="Set the surface's retrain policy", request=RetrainPolicySerializer,
                   responses=RetrainPolicySerializer)
    def put(self, request, surface: str):
        serializer = RetrainPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy, _ = RetrainPolicy.objects.update_or_create(surface=_surface(surface),
                                                           defaults=serializer.validated_data)
        return Response(RetrainPolicySerializer(policy).data)
