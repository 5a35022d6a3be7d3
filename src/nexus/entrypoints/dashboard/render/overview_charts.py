"""The overview's charts as the data Chart.js draws (JSON in ``data-chart``, read by app.js):
requests and tokens per bucket of the period, requests by model and by request type."""

from __future__ import annotations

from typing import Any

from nexus.application.ports.dashboard_queries import Overview
from nexus.application.ports.exchange_queries import UsageGroup
from nexus.domain.time_buckets import Step

# Labels are UTC, as the buckets are; the figure captions say so.
LABEL_FORMATS: dict[Step, str] = {"minute": "%H:%M", "hour": "%m-%d %H:00", "day": "%Y-%m-%d"}
# A request names no model when it is no Messages call (a model list, a file, a batch...) or
# when the proxy refused it, or upstream failed it, before a model was read. "unknown" said
# neither; the two are told apart by whether the request was an error.
NO_MODEL_CALLS = "no model: other endpoints"
NO_MODEL_ERRORS = "no model: refused or failed"
NO_REQUEST_TYPE = "other endpoints"  # only /v1/messages calls have a request type
ERROR_COLOR = "--error"  # app.css's red in either theme: errors stand out from their requests


def overview_charts(overview: Overview) -> dict[str, Any]:
    labels = [point.start.strftime(LABEL_FORMATS[overview.step]) for point in overview.series]
    series = overview.series
    models, counts = model_slices(overview.by_model)
    return {
        "requests": {
            "type": "bar",
            # The errors are drawn over their requests (a part of them), not beside them:
            # each bucket gets one full-width bar however many buckets there are.
            "overlay": True,
            "labels": labels,
            "series": [
                {"label": "Requests", "data": [p.requests for p in series]},
                {"label": "Errors", "data": [p.errors for p in series], "color": ERROR_COLOR},
            ],
        },
        "tokens": {
            "type": "line",
            "labels": labels,
            "series": [
                {"label": "Input", "data": [p.input_tokens for p in series]},
                {"label": "Output", "data": [p.output_tokens for p in series]},
                {"label": "Cache read", "data": [p.cache_read_input_tokens for p in series]},
                {"label": "Cache write", "data": [p.cache_creation_input_tokens for p in series]},
            ],
        },
        "models": {
            "type": "doughnut",
            "labels": models,
            "series": [{"label": "Requests", "data": counts}],
        },
        "types": {
            "type": "doughnut",
            "labels": [group.name or NO_REQUEST_TYPE for group in overview.by_request_type],
            "series": [{"label": "Requests", "data": [group.requests for group in overview.by_request_type]}],
        },
    }


def model_slices(groups: list[UsageGroup]) -> tuple[list[str], list[int]]:
    """Each model's requests, busiest first, then the requests naming none, split into the
    other endpoints' calls and the errors."""
    labels = [group.name for group in groups if group.name is not None]
    counts = [group.requests for group in groups if group.name is not None]
    for group in groups:
        if group.name is None:
            for label, count in ((NO_MODEL_CALLS, group.requests - group.errors), (NO_MODEL_ERRORS, group.errors)):
                if count:
                    labels.append(label)
                    counts.append(count)
    return labels, counts
