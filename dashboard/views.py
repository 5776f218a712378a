"""The PM's dashboard: server-rendered pages over the same services as the API, so the
same rules give the same messages."""

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from alerts import selectors as alert_selectors
from alerts import services as alert_services
from alerts.conditions import EVENTS
from alerts.models import Webhook
from analysis import selectors as analysis_selectors
from analysis import services as analysis_services
from analysis.models import AnalysisReport, Metric
from analysis.report import Report
from dashboard import permissions as perms
from dashboard import presenters as p
from experiments import holdouts, rollouts, services, surfaces, templates
from experiments.api.serializers import ExperimentCreateSerializer, ExperimentUpdateSerializer, LayerSerializer
from experiments.models import STAGES, SURFACES, Experiment, ExperimentTemplate, Layer, Rollout
from experiments.permissions import AdminOnly
from experiments.selectors import (
    describe_surface,
    free_slices,
    overshadowed_by,
    phase_windows,
    share_text,
    taken_slices,
    timeline,
)
from recommenders import jobs as recommender_jobs
from recommenders import registry
from recommenders import selectors as recommender_selectors
from recommenders.models import ModelVersion, OfflineEvaluation, RetrainPolicy

ACTIONS = {
    "start": "Start: users in this experiment's slice of the layer begin to be assigned to its variants and "
             "served their recommenders. Exposures and events start counting.",
    "pause": "Pause: no more users are assigned; those already exposed stay in the analysis. You may resume.",
    "stop": "Stop: assignment ends for good and the results freeze at what was collected. This cannot be undone.",
    "ship": "Ship: the experiment ends and the chosen variant's recommender becomes what every user in no "
            "experiment is served on its stage, at once or in steps you can stop.",
}
MAX_VARIANT_ROWS = 4


def _experiment(key) -> Experiment:
    return get_object_or_404(Experiment.objects.select_related("layer", "owner").prefetch_related("variants"),
                             key=key)


@login_required
def experiment_list(request):
    qs = Experiment.objects.select_related("layer").order_by("-created_at")
    status = request.GET.get("status", "")
    q = request.GET.get("q", "").strip()
    if status in Experiment.Status.values:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(key__icontains=q))
    rows = []
    experiments = list(qs[:200])
    reports = analysis_selectors.latest_reports(e.pk for e in experiments)
    for e in experiments:
        report, failed = reports[e.pk]
        result = Report.from_json(report.results or {}) if report else None
        srm = result.srm if result else None
        rows.append({"e": e, "days": analysis_services.days_running(e, datetime.now(UTC)),
                     "primary": p.primary_summary(result),
                     "srm": "no data" if srm is None or srm.p_value is None
                     else ("sample ratio mismatch" if srm.flagged else "healthy"),
                     "failed": failed})
    return render(request, "dashboard/experiment_list.html", {
        "rows": rows, "status": status, "q": q, "statuses": Experiment.Status.choices,
        "can_create": perms.can_create(request.user),
    })


def _form_body(post) -> dict:
    """The create form's fields as the API's request body."""
    variants = []
    control = post.get("control", "0")
    for i in range(MAX_VARIANT_ROWS):
        key = post.get(f"variant-{i}-key", "").strip()
        if not key:
            continue
        params_text = post.get(f"variant-{i}-params", "").strip() or "{}"
        try:
            params = json.loads(params_text)
        except json.JSONDecodeError:
            params = params_text  # the serializer says it is not an object
        variants.append({"key": key, "weight": post.get(f"variant-{i}-weight", ""), "is_control": str(i) == control,
                         "recommender": {"name": post.get(f"variant-{i}-recommender", ""), "params": params}})
    body = {
        "key": post.get("key", "").strip(), "name": post.get("name", "").strip(),
        "hypothesis": post.get("hypothesis", ""), "description": post.get("description", ""),
        "layer": post.get("layer", ""), "traffic_percent": post.get("traffic_percent", "100"),
        "design": post.get("design", "ab"), "variants": variants, "primary_metric": post.get("primary_metric", ""),
        "guardrail_metrics": post.getlist("guardrail_metrics"),
        "minimum_detectable_effect": _fraction(post.get("minimum_detectable_effect_percent", "2")),
        "pause_on_guardrail_regression": post.get("pause_on_guardrail_regression") == "on",
    }
    if post.get("template"):
        body["template"] = post["template"]
    if post.get("space") == "custom":
        body["layer_buckets"] = [_buckets(post.get("share_from", "")), _buckets(post.get("share_to", ""))]
    elif post.get("space", "free") == "free":
        layer = Layer.objects.filter(key=body["layer"]).first()
        free = free_slices(taken_slices(layer)) if layer else []
        if free:  # the largest free slice; none free: the service says the layer is taken, and by whom
            body["layer_buckets"] = list(max(free, key=lambda gap: gap[1] - gap[0]))
    targeting = post.get("targeting", "").strip()
    if targeting:
        try:
            body["targeting"] = json.loads(targeting)
        except json.JSONDecodeError:
            body["targeting"] = targeting
    return body


def _fraction(percent_text: str):
    """The form takes the MDE in percent, as traffic; the API in a fraction."""
    try:
        return float(percent_text.strip().rstrip("%")) / 100
    except ValueError:
        return percent_text  # the serializer says it is not a number


def _buckets(percent_text: str):
    """A share of the layer's users in percent to a bucket bound (1% is 100 buckets)."""
    try:
        return round(float(percent_text.strip().rstrip("%")) * 100)
    except ValueError:
        return percent_text


SHOWN_FIELDS = {"key", "name", "design", "layer", "layer_buckets", "traffic_percent", "variants", "targeting",
                "primary_metric", "guardrail_metrics", "minimum_detectable_effect"}


def _placed(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Errors of fields the form has no place for go with the variants (weights,
    recommenders) or at the top."""
    out: dict[str, list[str]] = {}
    for field, msgs in errors.items():
        if field in SHOWN_FIELDS:
            target = field
        elif field in ("weights", "recommender", "forced_user_ids"):
            target = "variants"
        else:
            target = "non_field_errors"
            msgs = msgs if field == "non_field_errors" else [f"{field}: {m}" for m in msgs]
        out.setdefault(target, []).extend(msgs)
    return out


def _say_errors(request, exc: ValidationError, prefix: str | None = None) -> None:
    """A service's refusal as messages on the next page: each message alone, or with
    `prefix` and its field's name before it ("New layer key: …")."""
    for field, field_errors in exc.message_dict.items():
        for m in field_errors:
            messages.error(request, m if prefix is None else f"{prefix}{field}: {m}")


def _flatten(errors) -> dict[str, list[str]]:
    """DRF's nested errors as field -> messages (variants: 'Variant 2: weight: …')."""
    out: dict[str, list[str]] = {}
    for field, value in errors.items():
        if field == "variants" and isinstance(value, list) and value and isinstance(value[0], dict):
            out["variants"] = [f"Variant {i + 1}: {f}: {' '.join(map(str, m)) if isinstance(m, list) else m}"
                               for i, row in enumerate(value) for f, m in row.items()]
        elif isinstance(value, dict):
            out[field] = [f"{k}: {v}" for k, v in value.items()]
        else:
            out[field] = [str(m) for m in (value if isinstance(value, list) else [value])]
    return out


@login_required
def experiment_create(request):
    if not perms.can_create(request.user):
        raise PermissionDenied("Your role cannot create experiments.")
    errors: dict = {}
    values = request.POST if request.method == "POST" else {}
    chosen_template = None
    if request.method == "GET" and request.GET.get("template"):
        chosen_template = ExperimentTemplate.objects.filter(key=request.GET["template"]).first()
        if chosen_template is not None:
            values = _template_values(chosen_template)
    if request.method == "POST":
        body = _form_body(request.POST)
        data = ExperimentCreateSerializer(data=body)
        if data.is_valid():
            fields = dict(data.validated_data)
            if "layer_buckets" in fields:
                fields["layer_buckets"] = tuple(fields["layer_buckets"])
            try:
                if fields.get("template"):
                    # The form shows every field but the guardrails' margins: those come from the template.
                    given = (set(body) | {"targeting"}) - {"guardrail_margins"}  # an emptied targeting box means none
                    fields = templates.apply(fields["template"], given, fields)
                experiment = services.create_experiment(actor=request.user, **fields)
            except ValidationError as exc:
                errors = _placed(_flatten(exc.message_dict))
            else:
                messages.success(request, f"Created {experiment.key}. Start it when you are ready.")
                return redirect("dashboard:experiment-detail", key=experiment.key)
        else:
            errors = _placed(_flatten(data.errors))
    # The control serves what users in no experiment get; the treatment something else, so
    # the form does not start as an A/A test.
    control = surfaces.effective_defaults(surfaces.stored_defaults("closeup"))["whole"]["name"]
    treatment = next((n for n in ("board_cooccurrence", "pixie", "popularity") if n != control), control)
    defaults = [("control", "50", control), ("treatment", "50", treatment), ("", "", ""), ("", "", "")]
    rows = [{"i": i, "key": values.get(f"variant-{i}-key", defaults[i][0]),
             "weight": values.get(f"variant-{i}-weight", defaults[i][1]),
             "recommender": values.get(f"variant-{i}-recommender", defaults[i][2]),
             "params": values.get(f"variant-{i}-params", "")} for i in range(MAX_VARIANT_ROWS)]
    return render(request, "dashboard/experiment_form.html", {
        "errors": errors, "values": values, "rows": rows, "control": values.get("control", "0"),
        "layers": _layer_choices(), "chosen_layer": values.get("layer") or request.GET.get("layer", ""),
        "space": values.get("space", "free"), "stages": STAGES,
        "metrics": Metric.objects.all(), "recommenders": registry.names(),
        "guardrails": values.getlist("guardrail_metrics") if values else ["hide_rate"],
        "templates": ExperimentTemplate.objects.all(), "chosen_template": chosen_template,
        "template_margins": ", ".join(f"{g['metric']} {p.pct(g.get('margin'), 1).lstrip('+')}"
                                      if g.get("margin") is not None else f"{g['metric']} untested"
                                      for g in chosen_template.guardrails) if chosen_template else "",
    }, status=400 if errors else 200)


def _template_values(template) -> QueryDict:
    """The create form's fields as a template fills them."""
    values = QueryDict(mutable=True)
    values.update({"template": template.key, "primary_metric": template.primary_metric,
                   "minimum_detectable_effect_percent": f"{template.minimum_detectable_effect * 100:g}",
                   "targeting": json.dumps(template.targeting) if template.targeting else ""})
    values.setlist("guardrail_metrics", [g["metric"] for g in template.guardrails])
    return values


def _metrics_shown(e: Experiment) -> dict:
    names = dict(Metric.objects.values_list("key", "name"))
    return {"primary": f"{names.get(e.primary_metric, e.primary_metric)} ({e.primary_metric})",
            "guardrails": [f"{names.get(g, g)} ({g})" for g in e.guardrail_metrics or []],
            "mde": p.pct(e.minimum_detectable_effect, 1).lstrip("+") if e.minimum_detectable_effect else "—"}


def _layer_choices() -> list[dict]:
    """Each layer with its free space in words, for the picker."""
    choices = []
    for layer in Layer.objects.exclude(key__startswith="holdout-"):
        taken = taken_slices(layer)
        free = free_slices(taken)
        widest = max(free, key=lambda gap: gap[1] - gap[0]) if free else None
        choices.append({
            "key": layer.key, "name": layer.name, "stage": layer.get_stage_display(),
            "free": f"{sum(e - s for s, e in free) / 100:g}% free" if free else "full",
            "widest": share_text(*widest) if widest else None,
            "users": ", ".join(f"{k} uses {share_text(s, e)}" for s, e, k in taken)})
    return choices


@login_required
@require_POST
def layer_create(request):
    """A layer from the dashboard: key, name and stage (the salt is made, never shown)."""
    if not request.user.has_perm("experiments.add_layer"):
        raise PermissionDenied("Your role cannot create layers.")
    key, name = request.POST.get("layer_key", "").strip(), request.POST.get("layer_name", "").strip()
    stage = request.POST.get("layer_stage", "whole")
    data = LayerSerializer(data={"key": key, "name": name or key, "stage": stage})
    try:
        if not data.is_valid():
            raise ValidationError(_flatten(data.errors))
        layer = services.create_layer(**data.validated_data)
    except ValidationError as exc:
        _say_errors(request, exc, prefix="New layer ")
        return redirect("dashboard:experiment-create")
    messages.success(request, f"Layer {layer.key} created: all of it is free.")
    return redirect(f"{reverse('dashboard:experiment-create')}?layer={layer.key}")


@login_required
def experiment_detail(request, key):
    e = _experiment(key)
    report = analysis_selectors.latest_report(e)
    power = Report.from_json(report.results or {}).power if report else None
    planner = None
    if power is None and e.status == Experiment.Status.DRAFT:
        # Before launch: the planner at the planned split, from the surface's last 14 days.
        try:
            planner = p.planner_text(analysis_selectors.power_plan(e, {"alpha": 0.05, "power": 0.8},
                                                                  datetime.now(UTC)))
        except analysis_selectors.NoBaseline:
            planner = None
    others = [x for x in e.layer.experiments.exclude(pk=e.pk) if x.status in ("draft", "running", "paused")]
    overshadowed = overshadowed_by(e) if e.status in (Experiment.Status.RUNNING, Experiment.Status.DRAFT,
                                                      Experiment.Status.PAUSED) else []
    offline = {r["variant"]: r for r in p.offline_beside_online(recommender_selectors.experiment_offline(e),
                                                                 None)["rows"]}
    return render(request, "dashboard/experiment_detail.html", {
        "variant_rows": [{"v": v, "offline": offline.get(v.key)} for v in e.variants.all()],
        "overshadowed": [dict(o, percent=f"{o['share'] * 100:.0f}%") for o in overshadowed],
        "e": e, "variants": list(e.variants.all()), "days": analysis_services.days_running(e, datetime.now(UTC)),
        "power": power, "planner": planner,
        "power_text": {"mde_now": p.pct(power.mde_now, 1).lstrip("+"),
                       "relative_mde": p.pct(power.relative_mde, 1).lstrip("+"),
                       "users_needed": f"{power.users_needed:,}" if power.users_needed is not None else None,
                       "correction": p.CORRECTION_WORDS.get(power.correction or "", power.correction),
                       "split": " / ".join(f"{w:.0%}" for w in power.weights.values())} if power else {},
        "others": [{"key": x.key, "left": x.bucket_start / 100, "width": (x.bucket_end - x.bucket_start) / 100}
                   for x in others],
        "slice": {"left": e.bucket_start / 100, "width": (e.bucket_end - e.bucket_start) / 100},
        "audit": [{"at": a.at, "actor": a.actor, "action": a.action, "changes": p.audit_changes(a.before, a.after)}
                  for a in e.audit_log.select_related("actor")[:50]],
        "metrics_shown": _metrics_shown(e),
        "timeline": timeline(e),
        "can_edit": perms.can_edit(request.user, e), "can_run": perms.can_run(request.user, e),
        "actions": [a for a, (sources, _) in services.TRANSITIONS.items() if e.status in sources],
        "shipped": e.audit_log.filter(action="ship").select_related("actor").first() if e.shipped_variant else None,
        "rollout": rollouts.describe(Rollout.objects.filter(experiment=e).first()),
        "targeting": json.dumps(e.targeting, indent=2) if e.targeting else "",
    })


@login_required
def experiment_action(request, key, action):
    e = _experiment(key)
    if action not in ACTIONS:
        raise PermissionDenied("Unknown action.")
    if not perms.can_run(request.user, e):
        raise PermissionDenied("Only the experiment's owner or an admin may do this.")
    if request.method == "POST":
        try:
            extra = _rollout_fields(request.POST) if action == "ship" else {}
            services.transition(e, action, actor=request.user, variant=request.POST.get("variant") or None, **extra)
        except ValidationError as exc:
            _say_errors(request, exc)
        else:
            messages.success(request, f"{e.key}: {action} done.")
        return redirect("dashboard:experiment-detail", key=e.key)
    variants = list(e.variants.all())
    advice = None
    if action == "ship":
        report = analysis_selectors.latest_report(e)
        control = next((v.key for v in variants if v.is_control), variants[0].key if variants else None)
        advice = p.ship_advice(Report.from_json(report.results or {}) if report else None, control)
    return render(request, "dashboard/confirm_action.html", {
        "e": e, "action": action, "explanation": ACTIONS[action], "variants": variants, "advice": advice,
    })


def _rollout_fields(form) -> dict:
    """The ship form's optional steps ("10, 50, 100") and hold, as the API takes them."""
    text = (form.get("rollout") or "").strip()
    if not text:
        return {}
    try:
        steps = [float(x.strip().rstrip("%")) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        message = "Steps are percentages separated by commas, for example 10, 50, 100."
        raise ValidationError({"rollout": [message]}) from None
    hold = (form.get("hold_hours") or "").strip()
    try:
        hold_hours = float(hold) if hold else None
    except ValueError:
        raise ValidationError({"hold_hours": ["Hours to hold each step: a number, for example 24."]}) from None
    return {"rollout": steps, "hold_hours": hold_hours}


@login_required
@require_POST
def experiment_rollout(request, key, action):
    """Step a ship's rollout up now, or stop it: the API's rules and messages."""
    e = _experiment(key)
    if action not in rollouts.ACTIONS:
        raise PermissionDenied("Unknown action.")
    if not perms.can_run(request.user, e):
        raise PermissionDenied("Only the experiment's owner or an admin may do this.")
    try:
        rollouts.act(e, action, actor=request.user)
    except ValidationError as exc:
        _say_errors(request, exc)
    else:
        messages.success(request, f"{e.key}: rollout {'stepped up' if action == 'advance' else 'stopped'}.")
    return redirect("dashboard:experiment-detail", key=e.key)


@login_required
@require_POST
def experiment_update(request, key):
    """Ramp traffic, or change name, description, hypothesis and end date: PATCH's rules."""
    e = _experiment(key)
    if not perms.can_edit(request.user, e):
        raise PermissionDenied("Only the experiment's owner or an admin may change it.")
    body = {f: request.POST[f] for f in ("name", "description", "hypothesis", "traffic_percent") if f in request.POST}
    data = ExperimentUpdateSerializer(data=body, partial=True)  # the API's PATCH rules and messages
    if not data.is_valid():
        for field, msgs in _flatten(data.errors).items():
            for m in msgs:
                messages.error(request, f"{field}: {m}")
        return redirect("dashboard:experiment-detail", key=e.key)
    changes = dict(data.validated_data)
    ramp = changes.get("traffic_percent")
    if ramp is not None and ramp != e.traffic_percent and request.POST.get("confirm") != "yes":
        return render(request, "dashboard/confirm_ramp.html", {
            "e": e, "old": e.traffic_percent, "new": ramp, "down": ramp < e.traffic_percent,
            "leaving": (1 - ramp / e.traffic_percent) if e.traffic_percent and ramp < e.traffic_percent else 0})
    try:
        services.update_experiment(e, actor=request.user, changes=changes)
    except ValidationError as exc:
        _say_errors(request, exc, prefix="")
    else:
        messages.success(request, "Saved.")
    return redirect("dashboard:experiment-detail", key=e.key)


def _phase_asked(request, e):
    """The phase a results request names (?phase=N, or the re-run form's field), checked
    by the analysis's own rule; None: the current one. ValidationError for a bad one."""
    raw = (request.POST if request.method == "POST" else request.GET).get("phase", "").strip()
    if not raw:
        return analysis_services.phase_to_analyse(e)
    if not raw.isdigit():
        raise ValidationError({"phase": [f"{raw!r} is not a phase number."]})
    return analysis_services.phase_to_analyse(e, int(raw))


@login_required
def experiment_results(request, key):
    e = _experiment(key)
    try:
        phase = _phase_asked(request, e)
    except ValidationError as exc:
        for m in exc.message_dict["phase"]:
            messages.error(request, f"phase: {m}")
        return redirect("dashboard:experiment-results", key=e.key)
    number = phase.number if phase else None
    report = analysis_selectors.latest_report(e, phase=number)
    failure = analysis_selectors.latest_failure_since_success(e, phase=number)
    cuped = request.GET.get("cuped") == "1"
    sequential = request.GET.get("mode") == "sequential"
    phases = phase_windows(e)
    context = {"e": e, "report": report, "failure": failure, "cuped": cuped, "sequential": sequential,
               "phase": phase, "phases": phases, "current_phase": phases[-1].number if phases else None,
               "can_analyze": perms.can_analyze(request.user),
               "history": AnalysisReport.objects.filter(experiment=e).defer("results")[:20]}
    result = Report.from_json(report.results or {}) if report is not None else None
    context["offline"] = p.offline_beside_online(recommender_selectors.experiment_offline(e), result, cuped,
                                                 sequential)
    if result is not None:
        blocks = []
        for role, title in (("primary", "Primary metric"), ("guardrail", "Guardrails"), ("secondary", "Other metrics")):
            for metric in result.metrics:
                if metric.role == role:
                    blocks.append({"title": title, "block": metric, "rows": p.metric_rows(metric, cuped, sequential),
                                   "cap": p.cap_words(metric.cap)})
        context.update(result=result, blocks=blocks, srm=result.srm,
                       single_variant=sum(1 for n in result.srm.observed.values() if n) == 1,
                       srm_observed=[(k, f"{n:,}") for k, n in result.srm.observed.items()],
                       srm_expected=[(k, f"{n:,.0f}") for k, n in result.srm.expected.items()],
                       forest=p.forest_data(result, cuped, sequential), series=p.series_data(result, sequential),
                       serving=p.serving_rows((report.results or {}).get("serving")), decision=p.decision(result),
                       health=p.health_lines(result, report.computed_at),
                       serving_measured=any(s.requests for s in result.serving or ()),
                       exposures=p.exposure_timeline(result, _timeline_markers(e)))
        if result.interleaving is not None:
            context.update(interleaving=p.interleaving_table(result.interleaving, result.settings.alpha),
                           preference=p.interleaving_series(result.interleaving))
    return render(request, "dashboard/experiment_results.html", context)


def _timeline_markers(e) -> list[tuple]:
    marks = []
    for t in timeline(e):
        if t["kind"] == "phase":
            marks.append((t["at"], f"phase {t['number']}"))
        else:
            marks.append((t["at"], f"traffic {t['from']:g}% → {t['to']:g}%"))
    return marks


@login_required
@require_POST
def experiment_analyze(request, key):
    e = _experiment(key)
    if not perms.can_analyze(request.user):
        raise PermissionDenied("Your role cannot run analyses.")
    try:
        phase = _phase_asked(request, e)
        analysis_services.run_analysis(e, trigger=AnalysisReport.Trigger.MANUAL, actor=request.user,
                                       phase=phase.number if phase else None)
        messages.success(request, "Analysis finished.")
    except ValidationError as exc:
        for m in exc.messages:
            messages.error(request, f"phase: {m}")
        return redirect(reverse("dashboard:experiment-results", kwargs={"key": e.key}))
    except analysis_services.AnalysisBusy:
        messages.error(request, "An analysis of this experiment is already running; try again shortly.")
    except analysis_services.AnalysisFailed as exc:
        messages.error(request, f"The analysis failed: {exc.report.error}")
    url = reverse("dashboard:experiment-results", kwargs={"key": e.key})
    # Back to the page as it was: the phase and the CUPED and sequential toggles kept.
    query = {k: v for k, v in (("mode", request.POST.get("mode")), ("cuped", request.POST.get("cuped"))) if v}
    if phase and phase.number != e.phases.count():
        query["phase"] = phase.number
    return redirect(f"{url}?{urlencode(query)}" if query else url)


@login_required
def recommenders_page(request):
    """Versions with their gate verdicts and the experiments that pin them, the build
    jobs with their progress, the surface's retrain policy; admins queue builds here."""
    is_admin = AdminOnly().has_permission(request, None)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Only an admin may build recommenders or change the retrain policy.")
        _recommenders_action(request)
        return redirect("dashboard:recommenders")
    pinned_by = recommender_selectors.experiments_by_version()
    versions = ModelVersion.objects.select_related("build_job").order_by("name", "-built_at")[:100]
    build_jobs = recommender_selectors.recent_build_jobs(10)
    policy = RetrainPolicy.objects.filter(surface="closeup").first() or RetrainPolicy(surface="closeup")
    return render(request, "dashboard/recommenders.html", {
        "registered": [{"name": n, "doc": [registry.get(n).description]} for n in registry.names()],
        "versions": [p.version_row(v, pinned_by.get((v.name, v.version), [])) for v in versions],
        "evaluations": OfflineEvaluation.objects.order_by("dataset", "-ndcg")[:100],
        "jobs": [p.build_job_row(j) for j in build_jobs],
        "working": any(j.state in ("queued", "running") for j in build_jobs),
        "policy": policy, "is_admin": is_admin,
        "retrain": {k: getattr(settings, f"RETRAIN_{k.upper()}") for k in (
            "enabled", "hour", "window_days", "holdout_days", "gate_max_ndcg_drop", "gate_max_coverage_drop",
            "gate_min_users")},
    })


def _recommenders_action(request) -> None:
    what = request.POST.get("what")
    if what in ("build", "retrain"):
        with transaction.atomic():
            job = recommender_jobs.enqueue(what, [])
        messages.success(request, f"{'Build' if what == 'build' else 'Retrain'} #{job.pk} queued on the builds queue.")
    elif what == "policy":
        try:
            traffic = float(request.POST.get("traffic_percent", "10"))
        except ValueError:
            traffic = -1.0
        design = request.POST.get("design", "interleaving")
        if not 0.1 <= traffic <= 100 or design not in RetrainPolicy.Design.values:
            messages.error(request, "Traffic must be a percentage between 0.1 and 100, and the design interleaving "
                                    "or ab.")
            return
        RetrainPolicy.objects.update_or_create(surface="closeup", defaults={
            "auto_experiment": request.POST.get("auto_experiment") == "on", "design": design,
            "traffic_percent": traffic})
        messages.success(request, "Retrain policy saved.")


@login_required
def offline_online_page(request):
    """Across finished experiments (running ones too when asked): does offline NDCG predict
    the online result here?"""
    running = request.GET.get("running") == "1"
    rows, summary = analysis_selectors.offline_online(include_running=running)
    return render(request, "dashboard/offline_online.html", {"running": running,
                                                             "table": p.offline_online_table(rows, summary)})


@login_required
def surface_page(request, surface):
    """What users in no experiment are served: the defaults per stage with their history,
    the rollouts in progress and the holdout; admins change them here as with the API."""
    if surface not in {key for key, _ in SURFACES}:
        raise Http404(f"Unknown surface {surface!r}.")
    is_admin = AdminOnly().has_permission(request, None)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Only an admin may change what a surface serves.")
        try:
            _change_surface(request, surface)
        except ValidationError as exc:
            _say_errors(request, exc, prefix="")
        else:
            messages.success(request, "Saved.")
        return redirect("dashboard:surface", surface=surface)
    described = describe_surface(surface)
    holdout = described["holdout"]
    return render(request, "dashboard/surface.html", {
        "surface": surface, "described": described, "is_admin": is_admin,
        "stages": [s for s, _ in STAGES],
        "recommenders": [{"name": n, "stages": registry.get(n).stages} for n in registry.names()],
        "holdout_results": reverse("dashboard:experiment-results", kwargs={"key": holdout["experiment"]})
        if holdout and holdout["experiment"] else None,
    })


def _change_surface(request, surface) -> None:
    form = request.POST
    what = form.get("what")
    if what == "default":
        stage = form.get("stage", "")
        name = (form.get("name") or "").strip()
        recommender = None
        if name:
            try:
                params = json.loads(form.get("params") or "{}")
            except json.JSONDecodeError:
                raise ValidationError({"params": ['Parameters are a JSON object, for example {"steps": 1000}.']}) \
                    from None
            recommender = {"name": name, "params": params}
            if (version := (form.get("version") or "").strip()):
                recommender["version"] = version
        surfaces.set_default(surface=surface, stage=stage, recommender=recommender, actor=request.user,
                             source=f"changed by {request.user.get_username()} on the dashboard")
    elif what == "holdout-start":
        try:
            percent = float(form.get("percent") or "")
        except ValueError:
            raise ValidationError({"percent": ["The share of users to hold back, in percent, e.g. 5."]}) from None
        holdouts.start(surface=surface, percent=percent, actor=request.user)
    elif what == "holdout-end":
        holdouts.end(surface=surface, actor=request.user)
    else:
        raise ValidationError({"form": ["Unknown change."]})


@login_required
def alerts_page(request):
    """Webhooks with their health and the delivery log; experimenters register here."""
    can_register = request.user.has_perm("alerts.add_webhook")
    if request.method == "POST":
        if not can_register:
            raise PermissionDenied("Your role cannot register webhooks.")
        form = request.POST
        try:
            if form.get("what") == "remove":
                Webhook.objects.filter(pk=form.get("webhook")).delete()
                messages.success(request, "Webhook removed.")
            else:
                webhook = alert_services.register(url=form.get("url", ""), events=form.getlist("events"),
                                                  secret=form.get("secret", ""),
                                                  description=form.get("description", "")[:200], owner=request.user)
                messages.success(request, f"Webhook {webhook.url} registered.")
        except ValidationError as exc:
            _say_errors(request, exc, prefix="")
        return redirect("dashboard:alerts")
    return render(request, "dashboard/alerts.html", {
        "webhooks": alert_selectors.webhooks(), "deliveries": [p.delivery_row(d) for d in
                                                               alert_selectors.deliveries(limit=100)],
        "events": EVENTS, "can_register": can_register, "timeout": settings.WEBHOOK_TIMEOUT_SECONDS,
    })
