"""The ``replyflow`` command line: a thin layer over the stage packages.

Each command builds the settings once, sets up logging and calls one function of a
stage package; heavy imports (Spark, TensorFlow, spaCy) happen inside the command so
``replyflow --help`` stays fast.  Errors a person can fix (a bad file or setting, a service
that is not there) print one line and exit 1 (:mod:`replyflow.clierrors`); the traceback
goes to the log, and to the terminal with ``--debug``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from replyflow.logs import register_secret, setup_logging
from replyflow.settings import Settings, get_settings

log = logging.getLogger("replyflow.cli")

app = typer.Typer(help="replyflow: answer customers on X automatically.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
kafka_app = typer.Typer(help="Run the local Apache Kafka broker (KRaft) and manage topics.", no_args_is_help=True)
ingest_app = typer.Typer(help="Publish tweets to Kafka from X or from a dataset replay.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts of the agent workspace (agents and admins).", no_args_is_help=True)
corrections_app = typer.Typer(help="Agents' corrections of the model's labels.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(ingest_app, name="ingest")
app.add_typer(users_app, name="users")
app.add_typer(corrections_app, name="corrections")


_options = {"debug": False}


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False) -> None:
    _options["debug"] = debug


def _require_kafka(settings: Settings) -> None:
    """Fail at once with a clear message when Kafka does not answer (instead of retrying for minutes)."""
    from replyflow.kafka.broker import BrokerError, broker_answers

    if not broker_answers(settings):
        where = "the local broker" if settings.kafka_is_local else "Kafka"
        raise BrokerError(f"{where} at {settings.bootstrap_servers} does not answer: start it with `replyflow kafka start` "
                          "(or `replyflow up`), or set KAFKA_BOOTSTRAP_SERVERS")


def _settings(logfile: str | None = None) -> Settings:
    settings = get_settings()
    for value in settings.secret_values():
        register_secret(value)
    setup_logging(settings.log_level, settings.logs_dir / logfile if logfile else None)
    return settings


# --- models -------------------------------------------------------------------------
@app.command()
def train(
    only: Annotated[
        Optional[list[str]], typer.Option(help="Train only these steps: split, lda, teacher, student, policy.")
    ] = None,
    corrections: Annotated[
        Optional[Path], typer.Option(help="Agents' corrections (replyflow corrections export): extra training rows.")
    ] = None,
    quick: Annotated[bool, typer.Option(help="One epoch on a small sample: checks the pipeline, not for use.")] = False,
) -> None:
    """Reproduce every model artefact under models/ from data/ (split, LDA, teacher, student, policy thresholds)."""
    from replyflow.nlp.train import train_all

    train_all(_settings(), only=only, corrections=corrections, quick=quick)


@app.command()
def evaluate() -> None:
    """Evaluate the models and baselines on the test split; write reports/."""
    from replyflow.nlp.evaluate import evaluate_all

    evaluate_all(_settings())


# --- Kafka --------------------------------------------------------------------------
@kafka_app.command("fetch")
def kafka_fetch() -> None:
    """Fetch the pinned Kafka broker and Spark connector jars from Maven Central (cached)."""
    from rich.console import Console

    from replyflow.kafka.broker import fetch_jars

    settings = _settings()
    with Console(stderr=True).status("Fetching jars with Maven (cached after the first run)..."):
        for group, path in fetch_jars(settings).items():
            typer.echo(f"{group}: {len(list(path.glob('*.jar')))} jars in {path}")


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the local single-node broker (formats storage on first start) and create topics."""
    from replyflow.kafka.broker import BrokerError, start
    from replyflow.kafka.topics import ensure_topics

    settings = _settings()
    try:
        start(settings)
    except BrokerError as exc:
        typer.echo(f"Kafka did not start: {exc}", err=True)
        raise typer.Exit(1) from None
    ensure_topics(settings)


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker cleanly."""
    from replyflow.kafka.broker import stop

    stop(_settings())


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the broker answers, and where."""
    from replyflow.kafka.broker import status

    raise typer.Exit(0 if status(_settings()) else 1)


@kafka_app.command("topics")
def kafka_topics() -> None:
    """Create the configured topics if missing and list them with partitions and end offsets."""
    from replyflow.kafka.topics import describe_topics, ensure_topics

    settings = _settings()
    ensure_topics(settings)
    describe_topics(settings)


# --- ingest -------------------------------------------------------------------------
@ingest_app.command("replay")
def ingest_replay(
    file: Annotated[Path, typer.Argument(help="CSV with the dataset's columns, or JSONL of raw tweets.")],
    rate: Annotated[float, typer.Option(help="Tweets per second; 0 = as fast as possible.")] = 0.0,
    limit: Annotated[Optional[int], typer.Option(help="Stop after this many input rows.")] = None,
) -> None:
    """Replay a dataset into tweets.raw (invalid rows go to tweets.dlq with the reason)."""
    from replyflow.ingest.replay import replay_file

    settings = _settings()
    if not file.is_file():
        raise FileNotFoundError(f"replay file not found: {file}")
    _require_kafka(settings)
    stats = replay_file(settings, file, rate=rate, limit=limit)
    typer.echo(
        f"{stats.rows} rows: {stats.published} published, {stats.dead_lettered} to the DLQ, "
        f"{stats.duplicates} duplicate ids skipped, {stats.blank} blank ({stats.rate:.0f} tweets/s)"
    )


@ingest_app.command("x-stream")
def ingest_x_stream() -> None:
    """Listen to the X filtered stream (rules from settings) and publish matches."""
    from replyflow.ingest.x_stream import run_filtered_stream

    run_filtered_stream(_settings("x-stream.log"))


@ingest_app.command("x-mentions")
def ingest_x_mentions(
    once: Annotated[bool, typer.Option(help="Poll once and exit.")] = False,
) -> None:
    """Poll the support account's mentions timeline (since_id kept across restarts)."""
    from replyflow.ingest.x_mentions import poll_mentions

    poll_mentions(_settings("x-mentions.log"), once=once)


# --- stream, reply service ------------------------------------------------------------
@app.command()
def stream(
    until_idle: Annotated[
        Optional[float], typer.Option(help="Stop after this many seconds without new input (default: run forever).")
    ] = None,
) -> None:
    """Run the Spark Structured Streaming job: tweets.raw -> NLP -> parquet, tweets.enriched, replies."""
    from replyflow.stream.job import run_stream

    run_stream(_settings("stream.log"), until_idle=until_idle)


@app.command()
def serve(
    sender: Annotated[bool, typer.Option(help="Also run the outbox sender in this process.")] = True,
) -> None:
    """Serve the reply API and the agent dashboard with a production WSGI server."""
    from replyflow.app import serve as serve_app

    serve_app(_settings("serve.log"), with_sender=sender)


@app.command()
def send(once: Annotated[bool, typer.Option(help="Drain the outbox once and exit.")] = False) -> None:
    """Post queued replies from the outbox (dry run unless REPLYFLOW_DRY_RUN=false)."""
    from replyflow.reply.sender import run_sender

    run_sender(_settings("sender.log"), once=once)


# --- workspace accounts and corrections ------------------------------------------------------
def _password(from_stdin: bool) -> str:
    """A new password: one line of standard input (scripts), else asked twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


_PASSWORD_STDIN = typer.Option("--password-stdin", help="Read the password from the first line of standard input.")


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Login name: a-z, 0-9, '.', '_', '-'.")],
    role: Annotated[str, typer.Option(help="agent or admin.")] = "agent",
    password_stdin: Annotated[bool, _PASSWORD_STDIN] = False,
) -> None:
    """Add a workspace user (asks for the password)."""
    from replyflow.reply.manage import add_user

    settings = _settings()
    account = add_user(settings, username, _password(password_stdin), role)
    typer.echo(f"added {account.username} ({account.role})")


@users_app.command("list")
def users_list() -> None:
    """List users: name, role, state, last login."""
    from replyflow.reply.manage import list_users

    for a in list_users(_settings()):
        last = a.last_login_at.strftime("%Y-%m-%d %H:%M") if a.last_login_at else "never"
        typer.echo(f"{a.username}\t{a.role}\t{'active' if a.active else 'disabled'}\tlast login {last}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: every open session of theirs ends at its next request."""
    from replyflow.reply.manage import set_user_active

    typer.echo(f"disabled {set_user_active(_settings(), username, False).username}")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again."""
    from replyflow.reply.manage import set_user_active

    typer.echo(f"enabled {set_user_active(_settings(), username, True).username}")


@users_app.command("reset-password")
def users_reset_password(username: str, password_stdin: Annotated[bool, _PASSWORD_STDIN] = False) -> None:
    """Set a new password (asks for it), clear a lockout, end the user's sessions."""
    from replyflow.reply.manage import reset_password

    typer.echo(f"new password set for {reset_password(_settings(), username, _password(password_stdin)).username}")


@corrections_app.command("export")
def corrections_export(path: Annotated[Path, typer.Argument(help="CSV file to write.")]) -> None:
    """Write the latest correction per tweet as CSV (tweet_id,text,sentiment,topic,needs_reply,corrected_by,corrected_at)."""
    from replyflow.reply.manage import export_corrections

    count = export_corrections(_settings(), path)
    typer.echo(f"{count} corrected tweet(s) written to {path}")


# --- all together ---------------------------------------------------------------------
@app.command()
def demo(
    limit: Annotated[int, typer.Option(help="How many dataset tweets to replay.")] = 1000,
    rate: Annotated[float, typer.Option(help="Replay rate, tweets per second (0 = as fast as possible).")] = 50.0,
    keep_running: Annotated[bool, typer.Option(help="Keep the services up after the summary.")] = False,
) -> None:
    """Run the whole pipeline end-to-end on embedded defaults and show what happened."""
    from replyflow.demo import run_demo

    run_demo(_settings("demo.log"), limit=limit, rate=rate, keep_running=keep_running)


@app.command()
def up(
    cluster: Annotated[bool, typer.Option(help="Run on a local cluster: 3 Kafka brokers, Spark standalone "
                                               "(master + 2 workers), PostgreSQL (state in var/cluster).")] = False,
) -> None:
    """Start broker, reply service and stream job in the background (logs in var/logs)."""
    from replyflow.ops.background import up as services_up

    settings = services_up(_settings(), cluster=cluster)
    if cluster:
        typer.echo(f"cluster settings for other commands: source {settings.cluster_dir / 'cluster.env'}")


@app.command()
def down() -> None:
    """Stop everything `replyflow up` started (the stream finishes its batch first)."""
    from replyflow.ops.background import down as services_down

    if not services_down(_settings()):
        typer.echo("a service did not stop within its timeout and was killed; see var/logs", err=True)
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Show what runs, the outbox, the stream's lag and last batch, and any alert (from the /metrics endpoints)."""
    from replyflow.ops.status import show_status

    raise typer.Exit(show_status(_settings()))


def main() -> None:
    """Entry point of the ``replyflow`` command: user errors as one line, bugs with a traceback."""
    from replyflow.clierrors import explain

    try:
        code = app(standalone_mode=False)  # click returns the code of typer.Exit instead of exiting
    except typer.Abort:
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        import click

        if isinstance(exc, click.ClickException):  # usage errors: click's own message
            exc.show()
            sys.exit(exc.exit_code)
        message = explain(exc)
        if message is None or _options["debug"]:
            raise
        log.debug("error details", exc_info=exc)
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
