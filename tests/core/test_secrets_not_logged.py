"""API keys, tokens and passwords never reach the logs: a real server, logging at
DEBUG with its access log on, is sent every kind of credential, good and bad, and
its whole output is searched for them."""

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest
from rest_framework.authtoken.models import Token

from accounts.services import create_api_key, revoke_api_key
from tests import processes


def _send(url: str, headers: dict, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _failed_login(base: str, username: str, password: str) -> tuple[int, str]:
    """A real login attempt with a wrong password: the form's CSRF token and cookie
    first, so the view itself (not the CSRF check) handles the password."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(f"{base}/login/", data=form.encode(), headers={"Referer": f"{base}/login/"})
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_keys_tokens_and_passwords_never_appear_in_the_server_log(tmp_path, experimenter):
    good = create_api_key("logged-client").key
    revoked_issue = create_api_key("revoked-client")
    revoke_api_key(revoked_issue.api_key)
    revoked = revoked_issue.key
    unknown = good[:-6] + "zzzzzz"  # right prefix, wrong secret
    token = Token.objects.create(user=experimenter).key
    password = "correct-horse-battery-staple-17"
    log = tmp_path / "web.log"
    with processes.web_server(log_path=log, gunicorn_args=("--access-logfile", "-", "--log-level", "debug"),
                              TEST_LOG_LEVEL="DEBUG", TEST_LOG_FORMAT="json") as base:
        seen = []
        for key in (good, revoked, unknown):
            auth = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
            seen.append(_send(f"{base}/api/v1/ping", auth))
            seen.append(_send(f"{base}/api/v1/assignments", auth, json.dumps({"user_id": "u1"}).encode()))
            seen.append(_send(f"{base}/api/v1/events", auth, json.dumps({"events": [
                {"event_id": str(uuid.uuid4()), "user_id": "u1", "type": "click", "pin_id": 1,
                 "timestamp": datetime.now(UTC).isoformat()}, {"type": "nope"}]}).encode()))
            seen.append(_send(f"{base}/api/v1/events", auth, b"\xff not json"))
        for value in (token, token[:-4] + "abcd"):
            seen.append(_send(f"{base}/api/v1/experiments", {"Authorization": f"Token {value}"}))
        login_status, login_page = _failed_login(base, experimenter.username, password)
    assert login_status == 200 and "username and password didn" in login_page, login_status
    assert {200, 202, 400, 401} <= set(seen) and 500 not in seen, seen
    output = log.read_text()
    assert "GET /api/v1/ping" in output, "the access log is not in the captured output; the test proves nothing"
    assert '"logger": "django.request"' in output, "the application's own log is not captured"
    assert "Unauthorized" in output or "Forbidden" in output
    for secret in (good, revoked, unknown, token, password):
        assert secret not in output
    # Not even the secret part of a key: what follows "pp_<prefix>_". The secret is
    # url-safe base64 and may hold "_" itself (splitting on the last one once left a
    # secret of one letter, found in the log by chance).
    for key in (good, revoked, unknown):
        secret = key.split("_", 2)[2]
        assert len(secret) >= 40 and secret[-16:] not in output
