from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication
from accounts.permissions import HasApiKey
from accounts.throttling import ApiKeyRateThrottle


class ClientView(APIView):
    """Base of the client endpoints (assignment, closeup, events): an API key, rate-limited per key."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiKeyRateThrottle]
