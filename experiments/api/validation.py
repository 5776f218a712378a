"""Tight validation for the client hot path: one pass over plain dicts, no serializer
(a DRF serializer costs tens of microseconds per call, more than the assignment)."""

from core.api.exceptions import FieldErrors
from experiments.assignment import storable_text, user_id_errors
from experiments.models import SURFACES

SURFACE_KEYS = frozenset(s for s, _ in SURFACES)
MAX_ATTRIBUTES = 50


def user_request(body, errors: dict, prefix: str = "") -> tuple[str, dict]:
    user_id = body.get("user_id")
    if messages := user_id_errors(user_id):
        errors[f"{prefix}user_id"] = messages
    attributes = body.get("attributes", {})
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        errors[f"{prefix}attributes"] = ["Must be an object."]
    elif len(attributes) > MAX_ATTRIBUTES:
        errors[f"{prefix}attributes"] = [f"At most {MAX_ATTRIBUTES} attributes."]
    else:
        bad = [k for k, v in attributes.items()
               if not isinstance(v, str | int | float | bool | None)
               and not (isinstance(v, list) and all(isinstance(x, str | int | float | bool) for x in v))]
        if bad:
            errors[f"{prefix}attributes"] = [f"Values must be strings, numbers, booleans or lists of them: {bad[0]}."]
        elif not all(storable_text(k) and all(storable_text(x) for x in (v if isinstance(v, list) else [v]))
                     for k, v in attributes.items()):
            errors[f"{prefix}attributes"] = ["Names and values must not contain NUL."]
    return user_id, attributes


def surface_of(body, errors: dict) -> str:
    surface = body.get("surface", "closeup")
    if not isinstance(surface, str) or surface not in SURFACE_KEYS:
        errors["surface"] = [f"Must be one of: {', '.join(sorted(SURFACE_KEYS))}."]
    return surface


def assignment_request(body) -> tuple[str, str, dict]:
    if not isinstance(body, dict):
        raise FieldErrors({"non_field_errors": ["Expected a JSON object."]})
    errors: dict = {}
    user_id, attributes = user_request(body, errors)
    surface = surface_of(body, errors)
    if errors:
        raise FieldErrors(errors)
    return surface, user_id, attributes


def batch_assignment_request(body, max_users: int) -> tuple[str, list[tuple[str, dict]]]:
    if not isinstance(body, dict):
        raise FieldErrors({"non_field_errors": ["Expected a JSON object."]})
    errors: dict = {}
    surface = surface_of(body, errors)
    users = body.get("users")
    if not isinstance(users, list) or not users:
        errors["users"] = ["Must be a non-empty list of {\"user_id\", \"attributes\"}."]
        raise FieldErrors(errors)
    if len(users) > max_users:
        errors["users"] = [f"At most {max_users} users per call."]
        raise FieldErrors(errors)
    parsed = []
    for i, item in enumerate(users):
        if not isinstance(item, dict):
            errors[f"users[{i}]"] = ["Must be an object."]
            continue
        parsed.append(user_request(item, errors, prefix=f"users[{i}]."))
    if errors:
        raise FieldErrors(errors)
    return surface, parsed
