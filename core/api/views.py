from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.response import Response

from accounts.authentication import ApiKeyAuthentication
from accounts.permissions import HasApiKey


@extend_schema(
    summary="Check an API key",
    responses=inline_serializer("Ping", {"client": serializers.CharField(), "status": serializers.CharField()}),
)
@api_view(["GET"])
@authentication_classes([ApiKeyAuthentication])
@permission_classes([HasApiKey])
@throttle_classes([])
def ping(request):
    """The cheapest client endpoint: authenticates the key and answers. Also the
    baseline the HTTP benchmarks compare the real endpoints with."""
    return Response({"status": "ok", "client": request.auth.name})
