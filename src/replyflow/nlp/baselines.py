"""Baselines reported beside the models: majority class, VADER, TF-IDF + logistic regression.

Each gets the same split and labels as the models; its one hyper-parameter (C) is chosen on the
validation split.  Training and evaluation only.
"""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

VADER_THRESHOLD = 0.05


def tfidf_features() -> TfidfVectorizer:
    """The baseline's features: TF-IDF of 1-2 grams over whitespace tokens (its texts come prepared)."""
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"\S+")


def logistic(c: float) -> LogisticRegression:
    """The baseline's classifier: class-balanced logistic regression with inverse regularisation ``c``."""
    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced")


def tfidf_lr(train: tuple[list[str], list[str]], val: tuple[list[str], list[str]], test_x: list[list[str]],
             labels: list[str]) -> tuple[list[list[str]], float]:
    """TF-IDF (1-2 grams) + logistic regression (balanced); C by validation macro-F1 over ``labels``.
    ``test_x`` is a list of text lists (test, 2021 set, ...), each predicted."""
    vec = tfidf_features()
    x_tr, x_va = vec.fit_transform(train[0]), vec.transform(val[0])
    best: tuple[float, float] = (-1.0, 1.0)
    for c in (0.3, 1.0, 3.0, 10.0):
        model = logistic(c).fit(x_tr, train[1])
        best = max(best, (f1_score(val[1], model.predict(x_va), labels=labels, average="macro", zero_division=0), c))
    model = logistic(best[1]).fit(x_tr, train[1])
    return [list(model.predict(vec.transform(x))) if x else [] for x in test_x], best[1]


def vader(texts: list[str]) -> list[str]:
    """VADER compound score with the usual +-0.05 thresholds (raw text: VADER wants punctuation/case)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        c = sia.polarity_scores(text)["compound"]
        out.append("positive" if c >= VADER_THRESHOLD else "negative" if c <= -VADER_THRESHOLD else "neutral")
    return out


def majority(train_labels: list[Any]) -> Any:
    """The most frequent training label."""
    return max(set(train_labels), key=train_labels.count)
