"""Entity rules a support agent needs; offsets point into the original text."""

from __future__ import annotations

from replyflow.nlp.ner import extract_entities, extract_entities_batch, rule_entities


def _pairs(text: str) -> set[tuple[str, str]]:
    ents = extract_entities(text)
    for e in ents:
        assert text[e["start"] : e["end"]] == e["text"]
        assert set(e) == {"text", "label", "start", "end"}
    return {(e["text"], e["label"]) for e in ents}


def test_airlines_handles_and_names() -> None:
    got = _pairs("Thanks JetBlue and @SouthwestAir, unlike @united and US Airways. Virgin America rocks")
    assert {("JetBlue", "AIRLINE"), ("@SouthwestAir", "AIRLINE"), ("@united", "AIRLINE"),
            ("US Airways", "AIRLINE"), ("Virgin America", "AIRLINE")} <= got


def test_united_states_is_not_an_airline() -> None:
    assert not any(label == "AIRLINE" for _, label in _pairs("I live in the United States"))


def test_flight_numbers() -> None:
    got = _pairs("flight 922 and UA 1234 and AA100 and Flight #45")
    assert {("flight 922", "FLIGHT"), ("UA 1234", "FLIGHT"), ("AA100", "FLIGHT"), ("Flight #45", "FLIGHT")} <= got


def test_airports_only_from_the_list_and_uppercase() -> None:
    got = _pairs("DFW to ORD, then lax. THE END")
    assert ("DFW", "AIRPORT") in got and ("ORD", "AIRPORT") in got
    airports = {t for t, label in got if label == "AIRPORT"}
    assert airports == {"DFW", "ORD"}  # not "lax" (lowercase), not THE/END (not airports)


def test_booking_reference_near_keyword_only() -> None:
    assert ("ABC12D", "BOOKING_REF") in _pairs("my confirmation number is ABC12D, please help")
    assert ("XK4PQZ", "BOOKING_REF") in _pairs("booking ref: XK4PQZ")
    assert not any(lbl == "BOOKING_REF" for _, lbl in _pairs("ABC12D is a random code"))


def test_money_and_dates() -> None:
    got = _pairs("@delta charged me $200 on Feb 24")
    labels = {lbl for _, lbl in got}
    assert "MONEY" in labels and ("Feb 24", "DATE") in got


def test_rules_win_over_overlapping_spacy_entities() -> None:
    ents = extract_entities("Delta lost my bag at JFK")
    spans = sorted((e["start"], e["end"]) for e in ents)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no overlaps
    assert {"Delta", "JFK"} <= {e["text"] for e in ents}


def test_blank_and_batch() -> None:
    assert extract_entities("") == []
    assert extract_entities_batch(["", "flight 1", "@united"]) == [[], *extract_entities_batch(["flight 1", "@united"])]
    assert rule_entities("") == []
