from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import selectors, services
from analysis.api import serializers as s
from analysis.api.renderers import ReportCSVRenderer
from analysis.models import AnalysisReport, Metric
from core.api.renderers import FastJSONRenderer
from experiments.models import Experiment
from recommenders import selectors as recommender_selectors
from recommenders.models import ModelVersion

FORMAT = OpenApiParameter("format", str, enum=["json", "csv"], description="csv or json: a download")
PHASE = OpenApiParameter("phase", int, description="the phase (users first exposed in it); default: the current one")


def _download(response: Response, request, name: str) -> Response:
    fmt = request.query_params.get("format")
    if fmt in ("csv", "json") and response.status_code == 200:
        response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


class ExperimentReportView(APIView):
    queryset = AnalysisReport.objects.none()
    renderer_classes = [FastJSONRenderer, ReportCSVRenderer]

    def experiment(self, key) -> Experiment:
        return get_object_or_404(Experiment, key=key)


class ResultsView(ExperimentReportView):
    @extend_schema(summary="The latest analysis of an experiment's phase", parameters=[FORMAT, PHASE],
                   responses={200: s.ResultsSerializer, 400: OpenApiResponse(description="no such phase"),
                              404: OpenApiResponse(description="not analysed yet")})
    def get(self, request, key):
        experiment = self.experiment(key)
        query = s.PhaseQuerySerializer(data={"phase": request.query_params.get("phase") or None})
        query.is_valid(raise_exception=True)
        phase = services.phase_to_analyse(experiment, query.validated_data["phase"])
        number = phase.number if phase else None
        report = selectors.latest_report(experiment, phase=number)
        failure = selectors.latest_failure_since_success(experiment, phase=number)
        if report is None:
            # As GrowthBook does: a phase not analysed yet has no results (another phase's
            # would count other users against other weights); analysing it is one POST.
            detail = "This experiment has not been analysed yet: POST to its analyze endpoint."
            if phase is not None:
                detail = (f"Phase {phase.number} has not been analysed yet: POST to the analyze endpoint "
                          f'(with {{"phase": {phase.number}}} for a past phase).')
            if failure:
                detail = f"The last analysis failed: {failure.error}"
            raise NotFound(detail)
        body = services.report_body(report)
        if failure:
            body["latest_failure"] = {"report_id": failure.pk, "computed_at": failure.computed_at,
                                      "error": failure.error}
        # Read now, not stored with the report: a version's held-out numbers arrive after its build.
        body["offline"] = recommender_selectors.experiment_offline(experiment).to_json()
        return _download(Response(body), request, f"{key}-results-{report.pk}")


class ReportListView(ExperimentReportView):
    @extend_schema(summary="Every analysis run of an experiment, newest first",
                   responses=s.ReportSummarySerializer(many=True))
    def get(self, request, key):
        experiment = self.experiment(key)
        reports = list(selectors.reports_of(experiment)[:200])
        return Response(s.ReportSummarySerializer(reports, many=True).data)


class ReportDetailView(ExperimentReportView):
    @extend_schema(summary="One stored analysis", parameters=[FORMAT], responses=s.ResultsSerializer)
    def get(self, request, key, report_id):
        experiment = self.experiment(key)
        report = get_object_or_404(AnalysisReport, experiment=experiment, pk=report_id)
        return _download(Response(services.report_body(report)), request, f"{key}-report-{report.pk}")


class AnalyzeView(ExperimentReportView):
    @extend_schema(summary="Run the analysis now", request=s.AnalyzeRequestSerializer, parameters=[PHASE],
                   responses={201: s.ResultsSerializer, 400: OpenApiResponse(description="field errors"),
                              409: OpenApiResponse(description="already running"),
                              422: OpenApiResponse(description="the analysis failed; the reason is recorded")})
    def post(self, request, key):
        experiment = self.experiment(key)
        data = request.data.copy() if isinstance(request.data, dict) else {}
        if "phase" not in data and request.query_params.get("phase"):
            data["phase"] = request.query_params["phase"]  # the body's wins when both say
        body = s.AnalyzeRequestSerializer(data=data)
        body.is_valid(raise_exception=True)
        try:
            report = services.run_analysis(experiment, trigger=AnalysisReport.Trigger.API, actor=request.user,
                                           **body.validated_data)
        except services.AnalysisBusy:
            return Response({"detail": "An analysis of this experiment is running; try again shortly."},
                            status=status.HTTP_409_CONFLICT)
        except services.AnalysisFailed as exc:
            return Response(services.report_body(exc.report), status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        return Response(services.report_body(report), status=status.HTTP_201_CREATED)


class PowerView(ExperimentReportView):
    @extend_schema(summary="Sample size, MDE and duration for the primary metric",
                   parameters=[s.PowerSerializer], responses=dict)
    def get(self, request, key):
        experiment = self.experiment(key)
        q = s.PowerSerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        try:
            return Response(selectors.power_plan(experiment, q.validated_data, timezone.now()))
        except selectors.NoBaseline:
            raise ValidationError({"baseline_mean": [
                f"No data to take the baseline from: no report yet and no events on the {experiment.surface} "
                f"surface in the last {selectors.BASELINE_DAYS} days. Give baseline_mean and unit_variance."]},
            ) from None


class OfflineOnlineView(APIView):
    queryset = ModelVersion.objects.none()  # the role's view permission on model versions

    @extend_schema(summary="Offline NDCG change beside online lift, across finished experiments",
                   parameters=[s.OfflineOnlineQuerySerializer],
                   responses={200: s.OfflineOnlineSerializer, 400: OpenApiResponse(description="field errors")})
    def get(self, request):
        query = s.OfflineOnlineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        include = query.validated_data["include_running"]
        rows, summary = selectors.offline_online(include_running=include)
        return Response({"include_running": include, "summary": summary.to_json(),
                         "rows": [r.to_json() for r in rows]})


class MetricListCreateView(generics.ListCreateAPIView):
    queryset = Metric.objects.all()
    serializer_class = s.MetricSerializer
    pagination_class = None


class MetricDetailView(generics.RetrieveAPIView):
    queryset = Metric.objects.all()
    serializer_class = s.MetricSerializer
    lookup_field = "key"


