"""What the analysis app tells whoever listens (the alerts app), without knowing them."""

from django.dispatch import Signal

# Sent once an analysis report, succeeded or failed, is stored, with report_id.
analysis_finished = Signal()
