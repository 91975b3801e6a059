"""Would more gold topic labels help?  The TF-IDF + logistic regression topic baseline trained on growing shares
of the gold training rows, scored on the validation split (never the test split).

    .venv/bin/python scripts/topic_learning_curve.py      # writes reports/topic_learning_curve.json (~1 minute)

Why the baseline and not the teacher: it trains in seconds, so the curve has several points and seeds; its
full-data score on test (0.686) is close to the serving student's (0.689), so its slope says how much labels
alone can still buy.  Every deduplicated training tweet of the dataset already has a gold label, so the last
point is the most this data can give.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARES = (0.125, 0.25, 0.5, 0.75, 1.0)
SEEDS = 3
C = 3.0  # the baseline's C chosen on validation by `replyflow evaluate` (reports/metrics.json)


def main() -> int:
    from replyflow.nlp.baselines import logistic, tfidf_features
    from replyflow.nlp.data import load_labelled
    from replyflow.nlp.evaluate import gold8
    from replyflow.nlp.text import clean_texts
    from replyflow.settings import Settings

    df = load_labelled(Settings())
    train = df[(df["split"] == "train") & df["topic"].notna()].reset_index(drop=True)
    val = df[(df["split"] == "validation") & df["topic"].notna()].reset_index(drop=True)
    x_train, x_val = clean_texts(train["text"].tolist()), clean_texts(val["text"].tolist())
    points = []
    for share in SHARES:
        scores = []
        for seed in range(SEEDS if share < 1 else 1):
            rows = np.random.default_rng(seed).permutation(len(train))[: int(share * len(train))]
            vec = tfidf_features()
            model = logistic(C).fit(vec.fit_transform([x_train[i] for i in rows]), train["topic"].iloc[rows])
            scores.append(gold8(val, list(model.predict(vec.transform(x_val))))["macro_f1"])  # as topic.gold8_test
        points.append({"share": share, "train_rows": int(share * len(train)), "val_macro_f1_8": round(float(np.mean(scores)), 4),
                       "std": round(float(np.std(scores)), 4), "seeds": len(scores)})
        print(f"{points[-1]['train_rows']:>6} gold training rows: validation macro-F1 (8 classes) "
              f"{points[-1]['val_macro_f1_8']:.3f} +- {points[-1]['std']:.3f}")
    out = ROOT / "reports" / "topic_learning_curve.json"
    out.write_text(json.dumps({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": f"TF-IDF (1-2 grams) + logistic regression, C={C}, class_weight=balanced",
        "scored_on": "validation split, gold rows of the 8 classes",
        "train_gold_rows": len(train), "train_rows_without_gold": int(((df["split"] == "train") & df["topic"].isna()).sum()),
        "points": points,
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
