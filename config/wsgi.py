import os

# LightGBM must be loaded before the libraries a request pulls in: loaded later in a
# gunicorn worker, its parameter dump came back truncated and restoring the ranker
# failed (JSONDecodeError in Booster(model_str=...)). Loaded first, it works.
import lightgbm  # noqa: F401
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()
