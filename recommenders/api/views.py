"""GET /api/v1/recommenders: each registered recommender, what it can serve, and its
built versions (newest first), with the offline numbers where it was evaluated."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from recommenders import registry, selectors
from recommenders.api.serializers import RecommenderSerializer
from recommenders.models import ModelVersion
from recommenders.serving import held_bytes


class RecommenderListView(APIView):
    queryset = ModelVersion.objects.none()  # the role's view permission on model versions

    @extend_schema(summary="Recommenders and their built versions", responses=RecommenderSerializer(many=True))
    def get(self, request):
        versions = selectors.versions_by_name()
        evaluations = selectors.latest_offline_ndcg()
        held = held_bytes()
        return Response([
            {"name": name, "description": registry.get(name).description, "stages": list(registry.get(name).stages),
             "offline_ndcg_at_10": evaluations.get(name),
             "versions": [{"version": v.version, "built_at": v.built_at, "active": v.is_active, "params": v.params,
                           "build_seconds": v.build_seconds, "size_bytes": v.size_bytes, "metrics": v.metrics,
                           "loaded_bytes": held.get((name, v.version))}
                          for v in versions.get(name, [])]}
            for name in registry.names()
        ])
