"""Profile: where the reply service's intake spends its time, in-process (Flask test client, SQLite, cProfile).

The stream's way of feeding it: chunks of 500 enriched tweets (``api_max_batch``), one after the other, as JSON
text; 40 chunks are profiled after 4 unprofiled warm-up chunks.  Prints the unprofiled ms per tweet, then the
profile sorted by cumulative time (cProfile inflates many small calls, so read shares, not absolute times).
Writes reports/bench/intake_profile.txt.

    .venv/bin/python bench/profile_intake.py
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "bench"
sys.path.insert(0, str(ROOT / "bench"))

from bench_api import tweet  # noqa: E402
from machine import describe  # noqa: E402

CHUNK, WARMUP, CHUNKS = 500, 4, 40
TOKEN = "profile-intake-token-0123456789abcdef"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="replyflow-profile-") as state:
        os.environ.update(REPLYFLOW_STATE_DIR=state, REPLYFLOW_API_TOKEN=TOKEN, REPLYFLOW_WEB_SECRET_KEY="x" * 32,
                          REPLYFLOW_LOG_LEVEL="WARNING")
        from replyflow.app import create_app
        from replyflow.settings import Settings

        app = create_app(Settings())
        client = app.test_client()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        bodies = [('{"tweets":[' + ",".join(json.dumps(tweet(i)) for i in range(CHUNK)) + "]}").encode()
                  for _ in range(WARMUP + 2 * CHUNKS)]

        def post(body: bytes) -> None:
            if client.post("/api/v1/replies", data=body, headers=headers).status_code != 200:
                raise SystemExit("the reply service refused a chunk")

        for body in bodies[:WARMUP]:
            post(body)
        began = time.perf_counter()
        for body in bodies[WARMUP:WARMUP + CHUNKS]:
            post(body)
        ms_per_tweet = 1000 * (time.perf_counter() - began) / (CHUNKS * CHUNK)
        profile = cProfile.Profile()
        profile.enable()
        for body in bodies[WARMUP + CHUNKS:]:
            post(body)
        profile.disable()
        app.extensions["replyflow"].store.dispose()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(45)
    header = (f"# Reply intake profile, {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, {describe()}\n"
              f"# command: .venv/bin/python bench/profile_intake.py\n"
              f"# {CHUNKS} chunks of {CHUNK} tweets, unprofiled: {ms_per_tweet:.3f} ms per tweet\n")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "intake_profile.txt").write_text(header + text.getvalue())
    print(header)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
