"""Webhooks: register receivers of alerts, read their delivery log."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts import selectors, services
from alerts.api.serializers import DeliverySerializer, WebhookSerializer
from alerts.models import Webhook


class WebhookListView(APIView):
    queryset = Webhook.objects.none()  # viewers read, experimenters and admins register

    @extend_schema(summary="Registered webhooks", responses=WebhookSerializer(many=True))
    def get(self, request):
        return Response(WebhookSerializer(selectors.webhooks(), many=True).data)

    @extend_schema(summary="Register a webhook", request=WebhookSerializer, responses={201: WebhookSerializer})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ['A JSON object: {"url", "events", "secret"}.']})
        data = request.data
        webhook = services.register(url=data.get("url"), events=data.get("events"), secret=data.get("secret"),
                                    description=str(data.get("description") or "")[:200], owner=request.user)
        return Response(WebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    queryset = Webhook.objects.none()

    @extend_schema(summary="One webhook", responses=WebhookSerializer)
    def get(self, request, pk: int):
        return Response(WebhookSerializer(get_object_or_404(Webhook, pk=pk)).data)

    @extend_schema(summary="Change a webhook (url, events, secret, description, is_active)",
                   request=WebhookSerializer, responses=WebhookSerializer)
    def patch(self, request, pk: int):
        webhook = get_object_or_404(Webhook, pk=pk)
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["A JSON object."]})
        changes = {k: v for k, v in request.data.items()
                   if k in ("url", "events", "secret", "description", "is_active")}
        if "is_active" in changes and not isinstance(changes["is_active"], bool):
            raise ValidationError({"is_active": ["true or false."]})
        return Response(WebhookSerializer(services.update_webhook(webhook, changes)).data)

    @extend_schema(summary="Remove a webhook and its delivery log", responses={204: None})
    def delete(self, request, pk: int):
        get_object_or_404(Webhook, pk=pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryListView(APIView):
    queryset = Webhook.objects.none()

    @extend_schema(summary="A webhook's deliveries, newest first (the last 100)",
                   responses=DeliverySerializer(many=True))
    def get(self, request, pk: int):
        webhook = get_object_or_404(Webhook, pk=pk)
        return Response(DeliverySerializer(selectors.deliveries(webhook=webhook), many=True).data)
