from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import ApiKeySerializer, IssuedApiKeySerializer, MeSerializer
from accounts.models import ApiKey
from accounts.permissions import IsLoggedIn
from accounts.roles import roles_of
from accounts.services import create_api_key, revoke_api_key


class MeView(APIView):
    permission_classes = [IsLoggedIn]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        user = request.user
        data = {
            "username": user.get_username(),
            "roles": roles_of(user),
            "permissions": sorted(user.get_all_permissions()),
        }
        return Response(MeSerializer(data).data)


class ApiKeyListCreateView(generics.ListCreateAPIView):
    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer

    @extend_schema(request=ApiKeySerializer, responses={201: IssuedApiKeySerializer})
    def post(self, request, *args, **kwargs):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = create_api_key(serializer.validated_data["name"])
        body = IssuedApiKeySerializer(issued.api_key).data
        body["key"] = issued.key
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeView(generics.GenericAPIView):
    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    lookup_field = "prefix"

    required_permissions = ["accounts.change_apikey"]

    @extend_schema(request=None, responses=ApiKeySerializer)
    def post(self, request, prefix):
        api_key = revoke_api_key(self.get_object())
        return Response(ApiKeySerializer(api_key).data)
