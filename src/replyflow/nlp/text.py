"""Pure text preprocessing shared by training and serving.

Training and serving MUST produce identical text, otherwise the models see different input
in production than in training.  Everything that turns a tweet into model
input therefore lives here, and ``PREPROCESSING_VERSION`` is stored in every model
manifest; bump it whenever the output of :func:`clean_text` changes for any input.

Steps (in order):

1. ``html.unescape`` (tweets carry ``&amp;``, ``&lt;``...).
2. Remove URLs (``http(s)://``, ``www.``, bare ``t.co/...``) even when glued to a word
   (``great!http://t.co/x`` -> ``great! ``), and @mentions (the airline handle says nothing
   about sentiment or topic; the entity extractor keeps it from the original text).
3. Hashtags: drop ``#`` and keep the word (``#fail`` -> ``fail``).
4. Emoji: a small table maps the common emoji of the data set to a word that carries
   their meaning (``😡`` -> ``angry``, ``❤`` -> ``love``); all other emoji/symbols are dropped.
   This is cheap and avoids a new dependency (``emoji`` package).
5. Expand contractions (``can't`` -> ``can not``, ``didn't`` -> ``did not``) so negations
   survive as the word ``not``.
6. Lemmas from a lookup table (``resources/en_lemma_lookup.json.gz``: the English table of
   spacy-lookups-data, from WordNet; shipped, nothing downloaded), lowercase, keep alphabetic
   tokens of >= 2 characters, drop spaCy ``STOP_WORDS`` except the negations
   ``not no never nor`` (``cannot`` -> ``can not``) and a few sentiment-bearing function words
   (:data:`SENTIMENT_FUNCTION_WORDS`).  Version 5 replaced spaCy's POS-tagger lemmatizer with
   the table: the models no longer read ``clean_text`` (it is for people, LDA and the TF-IDF
   baselines), and the tagger was the slowest step of the whole stream (564 tweets/s).

Text that is empty after cleaning yields ``""``, never an error.

:func:`encoder_text` is what both LSTMs read (through the pretrained word-piece encoder,
``nlp/encoder.py``): steps 1-2 only.  The encoder was pretrained on ordinary sentences, so
case, punctuation, stop words and inflections are left for its own tokenizer.

:func:`sentiment_text` is a lighter variant of :func:`clean_text` for the TF-IDF sentiment
baseline: steps 1-5 only (no lemmas, no stop-word removal) and ``!``/``?`` kept as tokens.
Function words and punctuation carry sentiment ("you did it again!"); on 5-fold CV of
train+validation a TF-IDF+LR scored 0.805 accuracy / 0.755 macro-F1 on it against
0.781 / 0.725 on :func:`clean_text`.  LDA, the TF-IDF topic baseline and the
``clean_text`` output use :func:`clean_text`.
"""

from __future__ import annotations

import gzip
import html
import json
import logging
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

PREPROCESSING_VERSION = "5"
NEGATIONS: frozenset[str] = frozenset({"not", "no", "never", "nor"})
#: spaCy stop words that carry sentiment in complaints ("why", "nothing", "again", "please"...);
#: kept because removing them cost ~0.5 point of validation macro-F1 (TF-IDF+LR check).
SENTIMENT_FUNCTION_WORDS: frozenset[str] = frozenset({
    "why", "but", "very", "too", "really", "please", "again", "nothing", "nobody", "none", "noone",
    "neither", "without", "ever", "only", "even", "well", "least", "enough", "more", "less", "all",
    "any", "always",
})

_URL_RE = re.compile(r"(?:https?://|www\.)\S+|\bt\.co/\S*", re.IGNORECASE)
_MENTION_RE = re.compile(r"@\w+")
_HASHTAG_RE = re.compile(r"#(\w+)")
_APOSTROPHES_RE = re.compile(r"[\u2018\u2019\u02bc`´]")
_NON_TEXT_RE = re.compile(r"[^A-Za-z' ]+")
_NON_TEXT_PUNCT_RE = re.compile(r"[^A-Za-z'!? ]+")
_PUNCT_RUN_RE = re.compile(r"([!?])[!?]*")
_SPACES_RE = re.compile(r"\s+")

# Emoji that occur often in airline tweets, mapped to a word with the same meaning.
EMOJI_WORDS: dict[str, str] = {
    "😡": " angry ", "😠": " angry ", "😤": " angry ", "👎": " bad ", "💩": " bad ",
    "😢": " sad ", "😭": " sad ", "😞": " sad ", "😩": " sad ", "😒": " annoyed ", "🙄": " annoyed ",
    "😂": " laugh ", "😊": " happy ", "😀": " happy ", "😃": " happy ", "😁": " happy ", "🙂": " happy ",
    "😍": " love ", "❤": " love ", "💕": " love ", "💙": " love ", "♥": " love ", "😘": " love ",
    "👍": " good ", "👌": " good ", "👏": " great ", "🙏": " thank ", "✈": " plane ", "🎉": " great ",
}
_EMOJI_RE = re.compile("|".join(map(re.escape, EMOJI_WORDS)))

# Contractions: explicit irregular forms first, then the regular suffixes.
_CONTRACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), r)
    for p, r in [
        (r"\bcan'?t\b", "can not"),
        (r"\bcannot\b", "can not"),
        (r"\bwon'?t\b", "will not"),
        (r"\bshan't\b", "shall not"),
        (r"\bain'?t\b", "is not"),
        (r"\b(\w+)n't\b", r"\1 not"),
        (r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should|must)nt\b", r"\1 not"),
        (r"\b(i)'m\b", r"\1 am"),
        (r"\b(\w+)'re\b", r"\1 are"),
        (r"\b(\w+)'ve\b", r"\1 have"),
        (r"\b(\w+)'ll\b", r"\1 will"),
        (r"\b(\w+)'d\b", r"\1 would"),
        (r"\b(it|that|there|what|he|she|who|here|where|how)'s\b", r"\1 is"),
    ]
]


#: every contraction rule needs an apostrophe or one of these words: most tweets skip all 13 rules
_MAY_CONTRACT_RE = re.compile(
    r"'|\b(?:cant|cannot|wont|aint|(?:do|does|did|is|are|was|were|has|have|had|could|would|should|must)nt)\b",
    re.IGNORECASE,
)


def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(w.lower() for w in STOP_WORDS) - NEGATIONS - SENTIMENT_FUNCTION_WORDS - {"cannot", "n't"}


STOP_WORDS: frozenset[str] = _stop_words()


@lru_cache(maxsize=1)
def lemma_table() -> dict[str, str]:
    """word -> lemma (41,582 English forms), loaded once per process."""
    path = Path(__file__).with_name("resources") / "en_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def pre_clean(text: str | None, keep_punct: bool = False) -> str:
    """Regex stage (steps 1-5), lowercased.

    Lowercasing before the tagger loses a little tagging accuracy but makes lemmas
    consistent: capitalised words at a sentence start ("Agents") would otherwise be
    tagged PROPN and keep their plural.
    """
    if not text:
        return ""
    t = html.unescape(str(text))
    t = _URL_RE.sub(" ", t)
    t = _MENTION_RE.sub(" ", t)
    t = _HASHTAG_RE.sub(r" \1 ", t)
    t = _EMOJI_RE.sub(lambda m: EMOJI_WORDS[m.group(0)], t)
    t = _APOSTROPHES_RE.sub("'", t)
    if _MAY_CONTRACT_RE.search(t):
        for pattern, repl in _CONTRACTIONS:
            t = pattern.sub(repl, t)
    if keep_punct:
        t = _PUNCT_RUN_RE.sub(r" \1 ", t)
        t = _NON_TEXT_PUNCT_RE.sub(" ", t)
    else:
        t = _NON_TEXT_RE.sub(" ", t)
    t = t.replace("'", " ")
    return _SPACES_RE.sub(" ", t).strip().lower()


def tokens(text: str | None) -> list[str]:
    """Cleaned, lemmatized tokens of one tweet (see module docstring)."""
    table = lemma_table()
    out: list[str] = []
    for word in pre_clean(text).split():
        lemma = table.get(word, word)
        if len(lemma) >= 2 and lemma.isalpha() and lemma not in STOP_WORDS:
            out.append(lemma)
    return out


def clean_text(text: str | None) -> str:
    """Cleaned tweet as one space-separated string; ``""`` when nothing is left."""
    return " ".join(tokens(text))


def clean_texts(texts: list[str]) -> list[str]:
    """Batch version of :func:`clean_text`; same output, same order."""
    return [clean_text(t) for t in texts]


def sentiment_text(text: str | None) -> str:
    """Input of the TF-IDF sentiment baseline: normalised, lowercased words plus ``!``/``?`` (no spaCy)."""
    return pre_clean(text, keep_punct=True)


def sentiment_texts(texts: list[str]) -> list[str]:
    """Batch version of :func:`sentiment_text`."""
    return [sentiment_text(t) for t in texts]


def encoder_text(text: str | None) -> str:
    """Input of the pretrained encoder (both LSTMs): HTML unescaped, URLs and @mentions removed,
    whitespace collapsed.  Case, punctuation and emoji stay: the word-piece tokenizer lowercases
    and splits them itself."""
    if not text:
        return ""
    t = html.unescape(str(text))
    t = _URL_RE.sub(" ", t)
    t = _MENTION_RE.sub(" ", t)
    return _SPACES_RE.sub(" ", t).strip()


def encoder_texts(texts: list[str]) -> list[str]:
    """Batch version of :func:`encoder_text`."""
    return [encoder_text(t) for t in texts]
