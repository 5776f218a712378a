"""What the experiments app tells whoever listens (the alerts app), without knowing
them: apps above it connect receivers; this app imports none of them."""

from django.dispatch import Signal

# Sent once a lifecycle change is committed, with experiment_id, action, status,
# actor_id (None when the platform acted by itself), note (why, then) and variant (ship).
lifecycle_changed = Signal()
