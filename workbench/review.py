"""Spaced repetition of the question cards with FSRS, the scheduler Anki uses by default (the
maintained ``fsrs`` package does the scheduling; nothing here computes an interval).

The card states and the review log live in ``review.json`` in the config folder (beside
``settings.ini``), as versioned JSON written atomically (:func:`workbench.scene.write_atomic`)::

    {"format": "dl-workbench-review", "version": 1, "new_per_day": 10, "marks_imported": true,
     "cards": {"attention.sqrt-dk": {"state": 2, "step": null, "stability": 8.29, "difficulty": 1.0,
                                     "due": "2026-05-12T09:14:03+00:00", "last_review": "..."}},
     "log": [{"card": "attention.sqrt-dk", "rating": 4, "time": "...", "duration_ms": 5210,
              "source": "review"}]}

A card without a state is new; cards added in later versions of the workbench are therefore new.
A file that cannot be used (not JSON, a wrong field, a newer version) is renamed beside itself
(``review.json.corrupt-20260504-141503``, ``review.json.newer-…``) and reported through
:attr:`ReviewStore.problem`; reviews start afresh and the old file is never overwritten.

Qt-free: the CLI and the Questions window share it. Times are aware UTC datetimes (``fsrs`` asks
for them); a "day" for the daily limit of new cards is a local day starting at 4 am, as in Anki.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Mapping

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State

from workbench.i18n import tr

FORMAT = "dl-workbench-review"
VERSION = 1
FILE_NAME = "review.json"
MAX_BYTES = 64 * 2 ** 20  # years of daily reviews are a few MB
DEFAULT_NEW_PER_DAY = 10
MAX_NEW_PER_DAY = 999
DAY_STARTS_AT_HOUR = 4  # a review at 1 am still counts for the evening before (Anki's default)
LEARN_AHEAD = timedelta(minutes=20)  # with nothing else due, learning steps due this soon are shown
RATINGS = {"again": Rating.Again, "hard": Rating.Hard, "good": Rating.Good, "easy": Rating.Easy}
SOURCES = ("review", "quiz")  # a rating given in Review, or a quiz mark carried over
_CARD_KEYS = {"state", "step", "stability", "difficulty", "due", "last_review"}
_LOG_KEYS = {"card", "rating", "time", "duration_ms", "source"}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def fsrs_id(card_id: str) -> int:
    """A stable integer for ``fsrs.Card.card_id`` (the package wants an int; ours are text)."""
    return int.from_bytes(hashlib.blake2b(card_id.encode("utf-8"), digest_size=6).digest(), "big")


def study_day(moment: datetime) -> date:
    """The local day ``moment`` counts for: days start at DAY_STARTS_AT_HOUR local time."""
    return (moment.astimezone() - timedelta(hours=DAY_STARTS_AT_HOUR)).date()


def local_text(moment: datetime) -> str:
    """``moment`` as local time, e.g. 2026-05-04 14:32."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def interval_text(delta: timedelta) -> str:
    """A short interval as on Anki's buttons: <1 min, 10 min, 5 h, 3 d, 2 mo, 1.5 y."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return tr("<1 min")
    if seconds < 3600:
        return tr("{n} min").format(n=round(seconds / 60))
    if seconds < 86400:
        return tr("{n} h").format(n=round(seconds / 3600))
    days = seconds / 86400
    if days < 30:
        return tr("{n} d").format(n=round(days))
    if days < 365:
        return tr("{n} mo").format(n=f"{days / 30:.1f}".removesuffix(".0"))
    return tr("{n} y").format(n=f"{days / 365:.1f}".removesuffix(".0"))


def due_text(due: datetime, now: datetime) -> str:
    """When ``due`` is, for a person: "now", or "in 3 d (2026-05-07 09:12)"."""
    if due <= now:
        return tr("now")
    return tr("in {interval} ({when})").format(interval=interval_text(due - now), when=local_text(due))


class ReviewError(ValueError):
    """A value the review store refuses (the message names it); nothing changed."""


@dataclass(frozen=True)
class Counts:
    """One topic's cards: due now (reviewed before, due), learning (in a learning or relearning
    step), learned (in the Review state), new (never reviewed), and all of them."""

    due: int = 0
    learning: int = 0
    learned: int = 0
    new: int = 0
    total: int = 0


class ReviewStore:
    """The FSRS states of the question cards and their review log, kept in ``path`` (None: in
    memory for this session). ``clock`` gives the current aware UTC time (tests fix it);
    ``scheduler`` is the ``fsrs.Scheduler`` (default: the package's defaults, fuzzing included,
    as in Anki). Open a file with :meth:`open`."""

    def __init__(self, path: str | os.PathLike | None = None, clock: Callable[[], datetime] = utc_now,
                 scheduler: Scheduler | None = None):
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self.scheduler = scheduler or Scheduler()
        self.states: dict[str, FsrsCard] = {}
        self.log: list[dict] = []
        self.new_per_day = DEFAULT_NEW_PER_DAY
        self.marks_imported = False
        self.problem = ""  # why an unusable file was set aside (and where it went); "" when all was well

    # ---- reading ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | None, clock: Callable[[], datetime] = utc_now,
             scheduler: Scheduler | None = None) -> "ReviewStore":
        """The store kept in ``path``: fresh when there is no file yet; when the file cannot be used
        it is set aside (renamed) and :attr:`problem` says so, and the store starts fresh."""
        store = cls(path, clock, scheduler)
        if store.path is None or not os.path.lexists(store.path):
            return store
        try:
            store._load(_read(store.path))
        except _Unusable as error:
            store._set_aside(error.kind, str(error))
        return store

    def _load(self, data: bytes) -> None:
        try:
            document = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise _Unusable("corrupt", tr("not valid JSON: {error}").format(error=error)) from None
        if not isinstance(document, dict):
            raise _Unusable("corrupt", tr("expected a JSON object"))
        version = document.get("version")
        if document.get("format") != FORMAT:
            raise _Unusable("corrupt", tr("format must be {format!r}").format(format=FORMAT))
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _Unusable("corrupt", tr("version must be an integer from 1 to {supported}").format(supported=VERSION))
        if version > VERSION:
            raise _Unusable("newer", tr("version {version} is newer than this workbench reads ({supported})").format(
                version=version, supported=VERSION))
        unknown = sorted(set(document) - {"format", "version", "new_per_day", "marks_imported", "cards", "log"})
        if unknown:
            raise _Unusable("corrupt", tr("unknown keys: {keys}").format(keys=", ".join(map(str, unknown))[:200]))
        new_per_day = document.get("new_per_day", DEFAULT_NEW_PER_DAY)
        if not _is_int(new_per_day) or not 0 <= new_per_day <= MAX_NEW_PER_DAY:
            raise _Unusable("corrupt", tr("new_per_day must be an integer from 0 to {most}").format(most=MAX_NEW_PER_DAY))
        marks_imported = document.get("marks_imported", False)
        if not isinstance(marks_imported, bool):
            raise _Unusable("corrupt", tr("marks_imported must be true or false"))
        cards, log = document.get("cards", {}), document.get("log", [])
        if not isinstance(cards, dict) or not isinstance(log, list):
            raise _Unusable("corrupt", tr("cards must be an object and log a list"))
        states = {}
        for card_id, raw in cards.items():
            states[card_id] = _card_state(card_id, raw)
        entries = [_log_entry(index, raw) for index, raw in enumerate(log)]
        self.states, self.log = states, entries
        self.new_per_day, self.marks_imported = new_per_day, marks_imported

    def _set_aside(self, kind: str, reason: str) -> None:
        """Rename the unusable file beside itself; if that fails, keep it and save nothing this session."""
        stamp = self.clock().astimezone().strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.{kind}-{stamp}")
        for n in range(1, 1000):
            if not os.path.lexists(aside):
                break
            aside = self.path.with_name(f"{self.path.name}.{kind}-{stamp}-{n}")
        try:
            os.rename(self.path, aside)
        except OSError as error:
            self.problem = tr("The review file {path} cannot be used ({reason}) and could not be set aside "
                              "({error}); reviews start afresh and are not saved this session.").format(
                path=self.path, reason=reason, error=error.strerror or error)
            self.path = None
            return
        self.problem = tr("The review file {path} cannot be used ({reason}); it was set aside as {aside} "
                          "and reviews start afresh.").format(path=self.path, reason=reason, aside=aside.name)

    # ---- writing ----------------------------------------------------------------------------
    def document(self) -> dict:
        """The store as the JSON document saved."""
        cards = {}
        for card_id, card in sorted(self.states.items()):
            state = card.to_dict()
            del state["card_id"]  # derived from the id (fsrs_id)
            cards[card_id] = state
        return {"format": FORMAT, "version": VERSION, "new_per_day": self.new_per_day,
                "marks_imported": self.marks_imported, "cards": cards, "log": self.log}

    def save(self) -> None:
        """Write the file atomically (a temporary file and a rename); OSError naming the path."""
        if self.path is None:
            return
        from workbench.scene import write_atomic

        text = json.dumps(self.document(), indent=1, ensure_ascii=False, allow_nan=False)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)  # the config folder of a first start
        write_atomic(self.path, (text + "\n").encode("utf-8"))

    # ---- reviewing --------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    def state(self, card_id: str) -> FsrsCard | None:
        """The card's FSRS state; None for a new card."""
        return self.states.get(card_id)

    def introduced_today(self, now: datetime | None = None) -> int:
        """New cards whose first rating in Review fell on today's study day."""
        today = study_day(now or self.now())
        first: dict[str, dict] = {}
        for entry in self.log:
            first.setdefault(entry["card"], entry)
        return sum(1 for entry in first.values()
                   if entry["source"] == "review" and study_day(datetime.fromisoformat(entry["time"])) == today)

    def new_left_today(self, now: datetime | None = None) -> int:
        return max(self.new_per_day - self.introduced_today(now), 0)

    def queue(self, cards: Iterable, now: datetime | None = None) -> list:
        """The cards to review now, in order: those due (earliest first), then new cards in their
        order up to what is left of today's limit. With none of those, learning steps due within
        LEARN_AHEAD (as Anki's learn-ahead limit). ``cards``: workbench.cards.Card objects."""
        now = now or self.now()
        cards = list(cards)
        due = sorted((c for c in cards if (s := self.states.get(c.id)) is not None and s.due <= now),
                     key=lambda c: self.states[c.id].due)
        new = [c for c in cards if c.id not in self.states][: self.new_left_today(now)]
        if due or new:
            return due + new
        soon = now + LEARN_AHEAD
        return sorted((c for c in cards if (s := self.states.get(c.id)) is not None
                       and s.state in (State.Learning, State.Relearning) and s.due <= soon),
                      key=lambda c: self.states[c.id].due)

    def next_due(self, cards: Iterable, now: datetime | None = None) -> datetime | None:
        """When the next reviewed card falls due after ``now`` (None: none has been reviewed)."""
        now = now or self.now()
        later = [s.due for c in cards if (s := self.states.get(c.id)) is not None and s.due > now]
        return min(later) if later else None

    def preview(self, card_id: str, now: datetime | None = None) -> dict[str, datetime]:
        """The due date each rating would give (without fuzz, as Anki's buttons show it)."""
        now = now or self.now()
        plain = Scheduler.from_dict({**self.scheduler.to_dict(), "enable_fuzzing": False})
        card = self._card(card_id)
        return {name: plain.review_card(card, rating, now)[0].due for name, rating in RATINGS.items()}

    def rate(self, card_id: str, rating: str, now: datetime | None = None, duration_ms: int | None = None,
             source: str = "review", save: bool = True) -> datetime:
        """Rate the card ("again", "hard", "good" or "easy"), log it, save; the next due date."""
        if rating not in RATINGS:
            raise ReviewError(tr("rating: {value!r} is not one of {known}").format(value=rating, known=", ".join(RATINGS)))
        now = now or self.now()
        card, review = self.scheduler.review_card(self._card(card_id), RATINGS[rating], now, duration_ms)
        self.states[card_id] = card
        self.log.append({"card": card_id, "rating": int(review.rating), "time": review.review_datetime.isoformat(),
                         "duration_ms": duration_ms, "source": source})
        if save:
            self.save()
        return card.due

    def _card(self, card_id: str) -> FsrsCard:
        state = self.states.get(card_id)
        return state if state is not None else FsrsCard(card_id=fsrs_id(card_id), due=self.now())

    def set_new_per_day(self, value) -> None:
        """The daily limit of new cards (0 to MAX_NEW_PER_DAY), saved; ReviewError otherwise."""
        if not _is_int(value) or not 0 <= value <= MAX_NEW_PER_DAY:
            raise ReviewError(tr("new cards a day: {value!r} is not allowed; expected an integer from 0 to {most}").format(
                value=value, most=MAX_NEW_PER_DAY))
        self.new_per_day = int(value)
        self.save()

    def import_marks(self, marks: Mapping[str, str], known: Iterable[str] | None = None, save: bool = True) -> int:
        """Carry the quiz's marks over, once: "got" is rated Easy (known already: due in days),
        "again" is rated Again (due today); these do not count against the daily limit. Cards
        that have a state already keep it; ids not in ``known`` (when given) are left out.
        ``save``: False only previews them (the command line lists what the window will show).
        Returns how many were carried over."""
        if self.marks_imported:
            return 0
        allowed = set(known) if known is not None else None
        count = 0
        now = self.now()
        for card_id, mark in sorted(marks.items()):
            if mark not in ("got", "again") or card_id in self.states or (allowed is not None and card_id not in allowed):
                continue
            self.rate(card_id, "easy" if mark == "got" else "again", now, source="quiz", save=False)
            count += 1
        self.marks_imported = True
        if save:
            self.save()
        return count

    # ---- counting ---------------------------------------------------------------------------
    def counts(self, cards: Iterable, now: datetime | None = None) -> dict[str, Counts]:
        """Per topic (and "" for all cards): due, learning, learned, new and total counts."""
        now = now or self.now()
        tally: dict[str, list[int]] = {"": [0] * 5}
        for card in cards:
            row = tally.setdefault(card.topic, [0] * 5)
            state = self.states.get(card.id)
            if state is None:
                column = 3
            else:
                column = 2 if state.state == State.Review else 1
            for target in (row, tally[""]):
                target[column] += 1
                target[4] += 1
                if state is not None and state.due <= now:
                    target[0] += 1
        return {topic: Counts(*values) for topic, values in tally.items()}


def parse_marks(text) -> dict[str, str]:
    """The quiz's marks as the settings keep them (``quiz_marks``: a flat JSON object of card id ->
    "got" | "again"); anything else gives no marks, other entries are dropped."""
    try:
        marks = json.loads(str(text))
    except (TypeError, ValueError, RecursionError):
        return {}
    if not isinstance(marks, dict):
        return {}
    return {k: v for k, v in marks.items() if isinstance(k, str) and v in ("got", "again")}


class _Unusable(Exception):
    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind  # "corrupt" or "newer": the suffix of the set-aside file


def _read(path: Path) -> bytes:
    from workbench.scene import _read_regular

    try:
        return _read_regular(path, MAX_BYTES)
    except OSError as error:
        raise _Unusable("corrupt", tr("cannot be read: {error}").format(error=error.strerror or error)) from None


def _refuse_constant(name: str):
    raise ValueError(tr("{name} is not allowed").format(name=name))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _utc(text, where: str) -> datetime:
    if not isinstance(text, str):
        raise _Unusable("corrupt", tr("{where}: expected an ISO date and time").format(where=where))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Unusable("corrupt", tr("{where}: {value!r} is not an ISO date and time").format(
            where=where, value=text[:40])) from None
    if moment.tzinfo is None:
        raise _Unusable("corrupt", tr("{where}: {value!r} has no time zone").format(where=where, value=text[:40]))
    return moment.astimezone(timezone.utc)


def _card_state(card_id, raw) -> FsrsCard:
    where = f"cards: {str(card_id)[:60]}"
    if not isinstance(raw, dict) or set(raw) != _CARD_KEYS:
        raise _Unusable("corrupt", tr("{where}: expected the keys {keys}").format(where=where, keys=", ".join(sorted(_CARD_KEYS))))
    state = raw["state"]
    if not _is_int(state) or state not in tuple(State):
        raise _Unusable("corrupt", tr("{where}: state must be 1, 2 or 3").format(where=where))
    step = raw["step"]
    if not (step is None or (_is_int(step) and 0 <= step < 100)):
        raise _Unusable("corrupt", tr("{where}: step must be null or a small integer").format(where=where))
    numbers = {}
    for key in ("stability", "difficulty"):
        value = raw[key]
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not math.isfinite(value) or value <= 0):
            raise _Unusable("corrupt", tr("{where}: {key} must be null or a positive number").format(where=where, key=key))
        numbers[key] = None if value is None else float(value)
    if (state != State.Learning) and None in numbers.values():
        raise _Unusable("corrupt", tr("{where}: a reviewed card needs stability and difficulty").format(where=where))
    due = _utc(raw["due"], f"{where}: due")
    last = None if raw["last_review"] is None else _utc(raw["last_review"], f"{where}: last_review")
    return FsrsCard(card_id=fsrs_id(str(card_id)), state=State(state), step=step, due=due, last_review=last, **numbers)


def _log_entry(index: int, raw) -> dict:
    where = f"log #{index}"
    if not isinstance(raw, dict) or set(raw) != _LOG_KEYS:
        raise _Unusable("corrupt", tr("{where}: expected the keys {keys}").format(where=where, keys=", ".join(sorted(_LOG_KEYS))))
    if not isinstance(raw["card"], str) or not _is_int(raw["rating"]) or raw["rating"] not in (1, 2, 3, 4):
        raise _Unusable("corrupt", tr("{where}: card must be text and rating 1 to 4").format(where=where))
    duration = raw["duration_ms"]
    if not (duration is None or (_is_int(duration) and duration >= 0)):
        raise _Unusable("corrupt", tr("{where}: duration_ms must be null or an integer >= 0").format(where=where))
    if raw["source"] not in SOURCES:
        raise _Unusable("corrupt", tr("{where}: source must be one of {known}").format(where=where, known=", ".join(SOURCES)))
    return {**raw, "time": _utc(raw["time"], f"{where}: time").isoformat()}

