import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


class FieldErrors(ValidationError):
    """Field messages, answered as DRF's usual 400 by the API's exception handler."""


def exception_handler(exc, context):
    """DRF's handler, plus the errors Django raises before DRF sees the body, and a
    503 (never a 500) when the database cannot be reached."""
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError, so the API and the dashboard share
        # their rules and messages; here it becomes DRF's 400 with field messages.
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc)
        return Response(
            {"detail": "A dependency is unavailable; nothing was changed. Retry later."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return drf_exception_handler(exc, context)
