"""The ticket list (every ticket, filters and search) and the overview with the charts.

Jinja2 autoescaping is on for every template: tweet text is hostile input.  It reads through the
reply service layer (:func:`replyflow.reply.service.current_service`) and its repositories.  The
charts live on their own page: counting every tweet for them is too slow for the list agents open
all day (the list's cost stays flat with 100,000 tickets; ``bench/bench_workspace.py``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for

from replyflow.core.labels import GENERAL_LABEL, SENTIMENT_CLASSES, TOPIC_CODES, topic_label
from replyflow.reply.queries import TicketFilter
from replyflow.reply.tables import TICKET_STATUSES
from replyflow.web.charts import SENTIMENT_COLOURS, bar_chart, volume_chart
from replyflow.web.common import PER_PAGE, now, page_arg, pages, svc, targets

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard-static")


@bp.get("/")
def index() -> str:
    """Every ticket, newest first, with filters and search."""
    filters = {k: (request.args.get(k) or "").strip() for k in ("status", "topic", "sentiment", "q")}
    if filters["status"] not in ("", *TICKET_STATUSES):
        filters["status"] = ""
    if filters["sentiment"] not in ("", *SENTIMENT_CLASSES):
        filters["sentiment"] = ""
    page = page_arg()
    chosen = TicketFilter(status=filters["status"] or None, topic=filters["topic"] or None,
                          sentiment=filters["sentiment"] or None, q=filters["q"] or None)
    items, total = svc().store.worklists.tickets(chosen, targets(), now(), page, PER_PAGE)

    def page_url(n: int) -> str:
        return url_for("dashboard.index", **{k: v for k, v in filters.items() if v}, page=n)

    return render_template(
        "workspace/tickets.html", items=items, total=total, page=page, pages=pages(total), page_url=page_url,
        filters=filters, statuses=TICKET_STATUSES, sentiments=SENTIMENT_CLASSES, topic_codes=TOPIC_CODES,
        general_label=GENERAL_LABEL, active="tickets",
    )


@bp.get("/overview")
def overview() -> Any:
    """Counts and the three charts (tweet volume, sentiment, tickets per topic)."""
    service = svc()
    stats = service.stats()
    topic_counts = {topic_label(k): v for k, v in stats["tickets"]["by_topic"].items()}
    charts = {
        "volume": volume_chart(service.tweet_times()),
        "sentiment": bar_chart("Sentiment of tweets sent to the service", stats["tweets"]["by_sentiment"], SENTIMENT_COLOURS),
        "topic": bar_chart("Tickets per topic", topic_counts),
    }
    return render_template("workspace/overview.html", stats=stats, charts=charts, active="overview")
