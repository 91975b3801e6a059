"""``replyflow train``: reproduce every model artefact from data/.

Steps (each can be run alone with ``--only``, in this order):

* ``split``: data/splits/ (the one de-duplicated train/validation/test split);
* ``lda``: models/lda/ (the exploration step that named the topics; reported, not trained on);
* ``teacher``: models/teacher/: the pretrained encoder fine-tuned on all three tasks, calibrated on
  validation, exported to ONNX (int8);
* ``student``: models/student/: the BiLSTM distilled from the teacher, calibrated, exported to ONNX;
* ``policy``: the reply policy's thresholds chosen on validation with the cascade's answers
  (models/policy.json; the settings' defaults must equal them, a test checks).

Training rows: the training split only (sentiment: every tweet; topic and needs-reply: the gold
annotations plus agents' corrections, if a corrections file is given, never for a validation or
test tweet).  Validation chooses epochs, temperatures and thresholds; test is never read here.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import track

from replyflow.nlp.data import load_clean_split, load_labelled, make_split
from replyflow.settings import Settings

log = logging.getLogger(__name__)

STEPS = ("split", "lda", "teacher", "student", "policy")
#: validation limits of the threshold search: under the product's targets (3% / 5%), for margin
MAX_WRONG_TOPIC, MAX_NO_REPLY = 0.02, 0.04


def training_frame(settings: Settings, corrections: Path | None = None) -> pd.DataFrame:
    """The annotated split (gold topics, needs-reply), plus agents' corrections as extra training rows.

    A correction of a tweet that is in the validation or test split, or in the 2021 set, is dropped:
    agents' labels never leak into what the models are judged on."""
    df = load_labelled(settings)
    if corrections is None:
        return df
    from replyflow.nlp.corrections import load_corrections

    extra = load_corrections(corrections, held_out=set(df.loc[df["split"] != "train", "tweet_id"]), data_dir=settings.data_dir)
    known = df["tweet_id"].isin(set(extra["tweet_id"]))
    train_known = known & (df["split"] == "train")
    df = df[~train_known]  # an agent's correction of a training tweet replaces its gold row
    return pd.concat([df, extra.assign(split="train", sample="correction")], ignore_index=True)


def train_all(settings: Settings, only: list[str] | None = None, corrections: Path | None = None,
              quick: bool = False) -> dict[str, Any]:
    """Run the requested steps in order; returns what each step reported.  ``quick``: one epoch and a
    small sample, for tests."""
    unknown = set(only or []) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown training steps {sorted(unknown)}; choose from {STEPS}")
    steps = [s for s in STEPS if not only or s in only]
    results: dict[str, Any] = {}
    for step in track(steps, description="replyflow train", console=Console(stderr=True)):
        log.info("training step: %s", step)
        if step == "split":
            results["split"] = len(make_split(settings))
        elif step == "lda":
            from replyflow.nlp.lda import build_labels

            clean = load_clean_split(settings)[["tweet_id", "clean"]]
            frame = load_labelled(settings).merge(clean, on="tweet_id")
            results["lda"] = build_labels(frame, settings.seed, settings.models_dir / "lda")
        elif step == "teacher":
            from replyflow.nlp.export import train_teacher

            _copy_tokenizer(settings)
            results["teacher"] = train_teacher(settings, training_frame(settings, corrections), quick)
        elif step == "student":
            from replyflow.nlp.export import train_student

            results["student"] = train_student(settings, training_frame(settings, corrections), quick)
        else:
            results["policy"] = choose_policy(settings)
    return results


def _copy_tokenizer(settings: Settings) -> None:
    """models/tokenizer.json: the encoder's word-piece tokenizer, so serving needs nothing but models/."""
    from replyflow.nlp.encoder import TOKENIZER_FILE, resolve_encoder_dir
    from replyflow.nlp.models import TOKENIZER_FILE as MODELS_TOKENIZER

    settings.models_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resolve_encoder_dir(settings.encoder_dir) / TOKENIZER_FILE, settings.models_dir / MODELS_TOKENIZER)


def choose_policy(settings: Settings) -> dict[str, Any]:
    """The needs-reply and topic thresholds with the most validation coverage within the limits,
    using the serving cascade's answers; written to models/policy.json."""
    from replyflow.core.addressing import KNOWN_AIRLINE_HANDLES
    from replyflow.core.policy import PolicyConfig
    from replyflow.nlp.pipeline import Enricher
    from replyflow.nlp.policy_eval import choose_thresholds

    df = load_labelled(settings)
    va = df[(df["split"] == "validation") & df["topic"].notna()].reset_index(drop=True)
    predictions = Enricher.load(settings.models_dir, settings.nlp_cascade_threshold).classify(va["text"].tolist())
    base = PolicyConfig.from_settings(settings.model_copy(update={"our_handles": sorted(KNOWN_AIRLINE_HANDLES)}))
    chosen, outcome = choose_thresholds(va.assign(author_handle=va["name"]).to_dict("records"), predictions, base,
                                        MAX_WRONG_TOPIC, MAX_NO_REPLY)
    result = {
        "reply_min_needs_reply": chosen.reply_min_needs_reply,
        "reply_min_topic_confidence": chosen.reply_min_topic_confidence,
        "chosen_on": f"validation ({len(va)} annotated tweets), cascade threshold {settings.nlp_cascade_threshold:g}",
        "limits": {"wrong_topic_rate": MAX_WRONG_TOPIC, "no_reply_rate": MAX_NO_REPLY},
        "validation": outcome.as_dict(),
    }
    (settings.models_dir / "policy.json").write_text(json.dumps(result, indent=2) + "\n")
    log.info("policy thresholds chosen on validation: %s", result)
    return result
