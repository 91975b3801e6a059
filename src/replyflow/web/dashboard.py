"""The agent dashboard (server-rendered, read-only).

Read-only by design: it shows tickets, tweets and charts, and changes nothing, so it
needs no login on a trusted network (bind ``api_host`` to loopback or put it behind
your SSO proxy).  Status changes go through ``PATCH /api/v1/tickets/<id>`` with the
bearer token.  Jinja2 autoescaping is on for every template: tweet text is hostile input.
It reads through the reply service layer (:func:`replyflow.reply.service.current_service`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request, url_for

from replyflow.core.labels import GENERAL_LABEL, SENTIMENT_CLASSES, TOPIC_CODES, topic_label
from replyflow.reply.queries import MAX_PAGE, TicketFilter
from replyflow.reply.service import current_service
from replyflow.reply.tables import TICKET_STATUSES
from replyflow.web.charts import SENTIMENT_COLOURS, bar_chart, volume_chart

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard-static")

PER_PAGE = 50


@bp.get("/")
def index() -> str:
    """Ticket list with filters and search, plus the three charts."""
    svc = current_service()
    filters = {k: (request.args.get(k) or "").strip() for k in ("status", "topic", "sentiment", "q")}
    if filters["status"] not in ("", *TICKET_STATUSES):
        filters["status"] = ""
    if filters["sentiment"] not in ("", *SENTIMENT_CLASSES):
        filters["sentiment"] = ""
    try:
        # bounded like the API's page: a huge page number overflowed SQLite's OFFSET (a 500)
        page = min(max(1, int(request.args.get("page", "1"))), MAX_PAGE)
    except ValueError:
        page = 1
    chosen = TicketFilter(status=filters["status"] or None, topic=filters["topic"] or None,
                          sentiment=filters["sentiment"] or None, q=filters["q"] or None)
    items, total = svc.list_tickets(chosen, page, PER_PAGE)
    stats = svc.stats()
    topic_counts = {topic_label(k): v for k, v in stats["tickets"]["by_topic"].items()}
    charts = {
        "volume": volume_chart(svc.tweet_times()),
        "sentiment": bar_chart("Sentiment of tweets sent to the service", stats["tweets"]["by_sentiment"], SENTIMENT_COLOURS),
        "topic": bar_chart("Tickets per topic", topic_counts),
    }
    pages = max(1, -(-total // PER_PAGE))

    def page_url(n: int) -> str:
        return url_for("dashboard.index", **{k: v for k, v in filters.items() if v}, page=n)

    return render_template(
        "dashboard/index.html", items=items, total=total, page=page, pages=pages, page_url=page_url,
        filters=filters, statuses=TICKET_STATUSES, sentiments=SENTIMENT_CLASSES, topic_codes=TOPIC_CODES,
        stats=stats, charts=charts, general_label=GENERAL_LABEL,
    )


@bp.get("/tickets/<ticket_id>")
def ticket(ticket_id: str) -> Any:
    data = current_service().get_ticket(ticket_id)
    if data is None:
        abort(404)
    return render_template("dashboard/ticket.html", t=data)
