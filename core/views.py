from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.cache import never_cache

from accounts.roles import roles_of
from core.health import run_checks


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    results = run_checks()
    body = {
        "status": "ok" if all(r.ok for r in results) else "unavailable",
        "checks": {r.name: ({"ok": True} if r.ok else {"ok": False, "reason": r.reason}) for r in results},
    }
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)


def api_not_found(request, *args, **kwargs):
    return JsonResponse({"detail": f"No API endpoint at {request.path}."}, status=404)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request)
    return render(request, "404.html", status=404)


def permission_denied(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": str(exception) or "You do not have permission to do this."}, status=403)
    roles = roles_of(request.user) if request.user.is_authenticated else []
    return render(request, "403.html", {"reason": str(exception) if exception else "", "roles": roles}, status=403)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    # No request context: whatever failed (the database, a template) must not fail this page too.
    return HttpResponseServerError(loader.get_template("500.html").render())


