"""The report files ``replyflow evaluate`` writes: classification reports, confusion matrices,
reliability diagrams and the policy's precision/coverage curve (PNG via matplotlib, headless)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sklearn.metrics import classification_report, confusion_matrix


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def classification_files(reports: Path, name: str, y_true: list[str], y_pred: list[str], rows: list[str],
                         cols: list[str], title: str) -> dict[str, Any]:
    """``<name>_classification_report.{txt,json}`` and ``<name>_confusion.png``; returns the report dict."""
    (reports / f"{name}_classification_report.txt").write_text(
        classification_report(y_true, y_pred, labels=cols, zero_division=0, digits=3))
    report = classification_report(y_true, y_pred, labels=cols, zero_division=0, output_dict=True)
    (reports / f"{name}_classification_report.json").write_text(json.dumps(report, indent=2) + "\n")
    cm = confusion_matrix(y_true, y_pred, labels=cols)[[cols.index(r) for r in rows]]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 3, 0.8 * len(rows) + 2.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(reports / f"{name}_confusion.png", dpi=100)
    plt.close(fig)
    return report


def reliability_figure(path: Path, curves: dict[str, dict[str, dict[str, Any]]]) -> None:
    """One panel per task: accuracy against confidence, before and after temperature scaling."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4))
    for ax, (task, versions) in zip(axes, curves.items()):
        ax.plot([0, 1], [0, 1], color="#999", linestyle=":", label="perfect")
        for label, curve in versions.items():
            ax.plot(curve["confidence"], curve["accuracy"], marker="o", label=f"{label} (ECE {curve['ece']:.3f})")
        ax.set_title(task)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Reliability on the test split (temperatures fitted on validation)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def policy_curve_figure(path: Path, curves: dict[str, list[dict[str, float]]], chosen: float) -> None:
    """Precision of automatic replies (no needless reply, no wrong topic) against coverage."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, curve in curves.items():
        coverage = [c["coverage"] for c in curve]
        precision = [1 - c["no_reply_rate"] - c["wrong_topic_rate"] for c in curve]
        ax.plot(coverage, precision, marker=".", label=name)
        at = min(curve, key=lambda c: abs(c["min_needs_reply"] - chosen), default=None)
        if at is not None:
            ax.scatter([at["coverage"]], [1 - at["no_reply_rate"] - at["wrong_topic_rate"]], s=60, zorder=3)
    ax.set_xlabel("coverage (share of tweets needing a reply that got an automatic one)")
    ax.set_ylabel("precision (1 - needless - wrong-topic share)")
    ax.set_title(f"Reply policy as the needs-reply threshold moves (dot: chosen {chosen:g})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
