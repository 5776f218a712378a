from rest_framework.renderers import BaseRenderer

from analysis.exports import report_csv
from analysis.report import Report


class ReportCSVRenderer(BaseRenderer):
    """`?format=csv` on a report: one row per metric and variant."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "metrics" in data:
            return report_csv(Report.from_json(data), data.get("report_id"), data.get("computed_at")).encode()
        # An error (404, 403): its message, as CSV.
        detail = data.get("detail", data) if isinstance(data, dict) else data
        return f"detail\n\"{str(detail).replace(chr(34), chr(39))}\"\n".encode()
