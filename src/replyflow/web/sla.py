"""How the desk is doing: SLA figures per agent and per topic, and model-vs-agent agreement per class.

Both pages refresh their figures in place with htmx (``hx-select`` of the same page), no reload.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template

from replyflow.reply.sla import format_duration
from replyflow.web.common import now, svc, targets

bp = Blueprint("sla", __name__)


@bp.get("/sla")
def sla() -> str:
    service = svc()
    days = service.settings.sla_window_days
    figures = service.store.sla.figures(targets(), now(), timedelta(days=days))
    return render_template("workspace/sla.html", figures=figures, targets=targets(), days=days,
                           duration=format_duration, active="sla")


@bp.get("/quality")
def quality() -> str:
    """Per week, the share of corrected tweets where the model had agreed with the agent, per class."""
    service = svc()
    days = service.settings.sla_window_days
    agreement = service.store.corrections.agreement(now() - timedelta(days=days))
    recent = service.store.corrections.latest(now() - timedelta(days=days))[-20:][::-1]
    return render_template("workspace/quality.html", agreement=agreement, recent=recent, days=days, active="quality")
