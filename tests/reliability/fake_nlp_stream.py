"""``replyflow stream`` with a deterministic fake NLP, for the fault-injection tests.

Why: the fault tests are about Kafka, Spark checkpoints, the reply service and the sender;
they must not depend on whether the trained models match the current preprocessing (the
NLP stage may be mid-retrain).  When the real models load, the tests run the real CLI
(``python -m replyflow.cli stream``); otherwise they run this module, which does exactly
what the CLI command does (settings from the environment, logging, ``run_stream``) with a
fake enricher.  The test report records which one ran.

Usage: ``python -m tests.reliability.fake_nlp_stream --until-idle SECONDS``
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


class FakeEnricher:
    """Keyword sentiment + a fixed confident topic: enough to drive the reply policy."""

    model_version = "fake-nlp"

    def enrich(self, texts: list[str]) -> list[dict[str, Any]]:
        out = []
        for text in texts:
            lower = text.lower()
            negative = any(w in lower for w in ("bag", "delay", "cancel", "lost", "worst", "not", "never", "hold"))
            out.append({
                "clean_text": lower, "sentiment": "negative" if negative else "positive", "sentiment_score": 0.9,
                "topic": "Baggage Issue" if negative else None, "topic_score": 0.8 if negative else None,
                "entities": [],
            })  # fmt: skip
        return out


def fake_loader(models_dir: str, cascade_threshold: float = 0.0, threads: int = 1) -> FakeEnricher:
    return FakeEnricher()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--until-idle", type=float, default=None)
    args = parser.parse_args(argv)

    from pyspark import cloudpickle

    from replyflow.cli import _settings
    from replyflow.stream.job import run_stream

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Spark workers need not import tests/
    run_stream(_settings("stream.log"), until_idle=args.until_idle, enricher_loader=fake_loader)
    return 0


if __name__ == "__main__":
    sys.exit(main())
