from django.conf import settings
from django.contrib.auth import views as auth_views

from accounts import throttling

PER_ADDRESS_FACTOR = 4  # an address may fail this many times the per-name limit, across names


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login, refusing with 429 after LOGIN_MAX_FAILURES failed attempts for one
    user name from one address (or four times that from one address across names)
    within LOGIN_LOCKOUT_SECONDS."""

    def post(self, request, *args, **kwargs):
        window = settings.LOGIN_LOCKOUT_SECONDS
        address = request.META.get("REMOTE_ADDR", "?")
        keys = [(f"login:{address}:{request.POST.get('username', '').strip().lower()[:150]}",
                 settings.LOGIN_MAX_FAILURES),
                (f"login:{address}", settings.LOGIN_MAX_FAILURES * PER_ADDRESS_FACTOR)]
        if any(throttling.peek(key, window) >= limit for key, limit in keys):
            response = self.render_to_response(self.get_context_data(form=self.get_form(), locked_out=True))
            response.status_code = 429
            response["Retry-After"] = str(window)
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: wrong name or password
            for key, limit in keys:
                throttling.hit(key, limit + 1, window)
        else:
            throttling.clear(keys[0][0], window)
        return response
