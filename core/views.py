from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

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


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return render(request, "500.html", status=500)


