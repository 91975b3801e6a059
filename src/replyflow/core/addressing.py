"""Is a tweet written *to* us, or does it only talk *about* us?  (docs/LABELING.md, "addressed")

A public reply from a brand's handle belongs under a tweet written to the brand, never under one
that talks about it to others ("can't believe @united lost my bag again").  Who "us" is depends on
the deployment (``our_handles``), so this is decided from the tweet's structure, not learned from
text: retweets and quotes of our own tweets are not addressed to us; a tweet whose leading
mentions start with our handle is (unless it is a shared headline that merely starts with it); our
handle elsewhere counts only when the author speaks to it ("hey @united", "@united why ..."), not when
it is a tag among hashtags or the subject of a report.  The rules were chosen on the validation tweets
(the airline validation split and ``live2021_validation.csv``), never on the test sets.

Pure and dependency-free, like the policy that uses it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

#: Support handles of major airlines, written from general knowledge (not from any evaluation data):
#: the desk of the dataset replay and the out-of-time evaluation treat all of them as "us".
KNOWN_AIRLINE_HANDLES: frozenset[str] = frozenset(h.lower() for h in (
    "united", "americanair", "delta", "deltaassist", "southwestair", "jetblue", "alaskaair", "spiritairlines",
    "flyfrontier", "hawaiianair", "allegiant", "suncountryair", "virginamerica", "usairways", "aircanada", "westjet",
    "british_airways", "virginatlantic", "ryanair", "easyjet", "lufthansa", "airfrance", "klm", "emirates",
    "qatarairways", "etihad", "turkishairlines", "singaporeair", "cathaypacific", "qantas", "virginaustralia",
    "airnz", "aeromexico", "avianca", "latamairlines", "iberia", "aerlingus", "finnair", "sas", "airindia",
    "indigo6e", "flyspicejet", "airvistara", "airasiasupport", "jetstar_airways", "norwegian", "wizzair",
    "aegeanairlines", "tapairportugal", "swissintairlines", "austrian", "brusselsairlines", "icelandair",
    "copaairlines", "volarisemb", "flyethiopian", "kenyaairways", "saudi_airlines", "pia_airlines",
))

_HANDLE = r"@(\w{1,50})"
_LEADING = re.compile(r"^[\s.\"“”'‘’]*((?:@\w{1,50}[\s,:;&]*(?:and\s+)?)+)")
_MENTION = re.compile(_HANDLE)
_RETWEET = re.compile(r"^\s*RT\s+@", re.IGNORECASE)
_OLD_STYLE_RT = re.compile(r"\bRT\s+@\w+\s*:", re.IGNORECASE)
_QUOTE_OF = re.compile(r"^\s*[\"“]@(\w{1,50})\s*:[^\"”]*[\"”]?")
_URL = re.compile(r"https?://|\bt\.co/|www\.", re.IGNORECASE)
#: a person writing to us speaks as "I"/"we" or to "you", or asks; a shared headline does neither
_PERSONAL = re.compile(r"\?|\b(?:i|i'm|im|i've|my|me|mine|we|our|ours|you|your|u|ur|pls|plz|please|help|thanks|thank)\b",
                       re.IGNORECASE)
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|u|ur|y'all|yall|pls|plz|please|help|why|how|can|could|will|would|"
                            r"when|where|what|thanks|thank)\b", re.IGNORECASE)
#: what turns a handle after it into the one spoken to: a vocative word ("hey @united", "thanks @JetBlue"),
#: or the end of a sentence ("So appreciated! @united", "Sorry for unfollowing, @JetBlue") -- but not a
#: colon ("Good news for travelers: @FlyFrontier is ditching its fee" reports on the airline).
_VOCATIVE_BEFORE = re.compile(r"(?:\b(?:hey|hi|hello|yo|dear|thanks|thank you|thx|ty|come on|shame on you|ok|okay|"
                              r"please|pls|so|well|seriously|really)|[!?.,])\s*$", re.IGNORECASE)
#: a handle that opens a run of hashtags is a tag, even after a full stop ("... now. @Delta #travel #airline")
_TAG_RUN_AFTER = re.compile(r"^\s*(?:@\w+\s*)*#\w+")
#: what follows a handle spoken to: "@united, you ...", "@united why ...", "@united where is my bag?"
_ASKED_AFTER = re.compile(r"^\s*[,:]?\s*(?:you|your|u|ur|why|how|can|could|please|pls|plz|where|when|what|is there|"
                          r"are you|do you|did you|will you|would you|any)\b", re.IGNORECASE)
#: invisible format characters (bidi isolates and marks, zero-width joiners) that clients put around
#: handles ("\u2066@Ryanair\u2069"): removed first, or a tweet that starts with our handle would not
_FORMAT_CHARS = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def is_headline(text: str) -> bool:
    """A shared news link: a URL, nothing personal, and headline style (Title Case words or a source
    credit: "@JetBlue Airways Hits New 12-Month High - WKRB News http://...")."""
    if not _URL.search(text) or _PERSONAL.search(text):
        return False
    words = [w for w in re.findall(r"[A-Za-z][\w'’.-]*", _URL.split(text)[0]) if len(w) > 3]
    title = sum(w[0].isupper() for w in words) >= max(2, 0.5 * len(words))
    return title or bool(re.search(r"\s[-–|]\s+\w|\bvia\s+@", text, re.IGNORECASE))


def handle_set(handles: Collection[str]) -> frozenset[str]:
    """``handles`` lower-cased without ``@``, as one set: computed once per distinct list, not per tweet
    (the stream and the reply service ask for every tweet, with dozens of handles)."""
    return _handle_set(tuple(handles))


@functools.lru_cache(maxsize=32)
def _handle_set(handles: tuple[str, ...]) -> frozenset[str]:
    return frozenset(h.lstrip("@").lower() for h in handles)


def _ours(handle: str, ours: Collection[str]) -> bool:
    return handle.lower() in ours


def is_addressed(text: str, our_handles: Collection[str], is_retweet: bool = False) -> bool:
    """True when ``text`` is written to one of ``our_handles`` (lower-case, without ``@``)."""
    ours = handle_set(our_handles)
    text = _FORMAT_CHARS.sub("", text or "")
    if is_retweet or _RETWEET.match(text):
        return False
    rt = _OLD_STYLE_RT.search(text)
    if rt:  # "comment RT @x: their text": only the author's comment counts
        text = text[: rt.start()]
    quote = _QUOTE_OF.match(text)
    if quote and _ours(quote.group(1), ours):
        # quoting our tweet: an answer to it is written to us, passing it on to others is not
        comment = text[quote.end():].strip()
        return bool(re.search(r"[A-Za-z]{2}", _MENTION.sub("", comment))) and not comment.startswith("@")
    leading = _LEADING.match(text)
    if leading:
        handles = _MENTION.findall(leading.group(1))
        rest = text[leading.end():]
        if _ours(handles[0], ours):
            return not is_headline(rest)
        if any(_ours(h, ours) for h in handles[1:]):
            return bool(_SECOND_PERSON.search(rest))  # a reply to someone else that tags us: only if it asks us
        text_after_block = rest
    else:
        text_after_block = text
    for match in _MENTION.finditer(text_after_block):
        if not _ours(match.group(1), ours):
            continue
        before, after = text_after_block[: match.start()], text_after_block[match.end():]
        if after.startswith(("'s", "’s")):
            continue
        if _VOCATIVE_BEFORE.search(before) and not _TAG_RUN_AFTER.match(after):  # "hey @united", "... ! @united"
            return True
        if _ASKED_AFTER.match(after):
            return True
    return False
