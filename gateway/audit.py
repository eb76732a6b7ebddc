"""Checking a store's message log: the chain, the evidence behind it, the anchors kept elsewhere, the database.

:func:`audit_store` is what ``nswgw log verify`` runs (everything) and what a gateway runs before it starts
(the chain and the anchors, which read only the journal rows): a broken chain refuses the start with
:class:`~gateway.errors.JournalBroken`. :class:`Anchoring` is the running gateway's side: it appends the
journal head to the anchor file every ``[journal] anchor_interval`` seconds (when it moved) and at stop, and
tells ``/readyz`` when the store's head falls behind what was anchored (entries cut off the end while running).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.errors import JournalBroken, NswError
from gateway.journal import (
    GENESIS,
    Anchor,
    JournalEntry,
    JournalProblem,
    JournalReport,
    append_anchor,
    check_anchors,
    check_evidence,
    read_anchors,
    verify_chain,
)
from gateway.periodic import Periodic
from gateway.store.base import Store

__all__ = ["Anchoring", "audit_store", "require_sound_journal"]

log = logging.getLogger("nswgw.journal")

PAGE = 10_000


async def audit_store(
    store: Store,
    *,
    anchors: Sequence[Anchor] = (),
    evidence: bool = True,
    integrity: bool = True,
    start: tuple[int, str] = (0, GENESIS),
) -> JournalReport:
    """Walk the whole journal from ``start`` page by page: the hash chain; with ``evidence``, each entry's digest
    against the payload (and receipt), or the operator action's record, the store holds now; each anchor
    (:func:`~gateway.journal.check_anchors`); with ``integrity``, the database's own check
    (:meth:`Store.integrity`). One report with every problem."""
    problems: list[JournalProblem] = []
    wanted = {a.seq for a in anchors}
    anchored: dict[int, JournalEntry] = {}
    count = 0
    head = start
    while True:
        page = await store.journal(after=head[0], limit=PAGE)
        if not page:
            break
        report = verify_chain(page, start=head)
        problems.extend(report.problems)
        count += report.entries
        if evidence:
            problems.extend(check_evidence(page, await store.evidence_digests(page)))
        anchored.update((e.seq, e) for e in page if e.seq in wanted)
        head = (report.head_seq, report.head_hash)
    problems.extend(check_anchors(anchors, anchored, head_seq=head[0], base_seq=start[0]))
    if integrity:
        result = await store.integrity()
        if result != "ok":
            problems.append(JournalProblem(0, f"store-damaged ({result})"))
    return JournalReport(count, head[0], head[1], tuple(problems))


async def require_sound_journal(store: Store, anchors: Sequence[Anchor], *, start: tuple[int, str]) -> JournalReport:
    """The check before a gateway starts: the chain and the anchors (not the evidence, which reads every
    payload). Raises :class:`~gateway.errors.JournalBroken` naming the first problems."""
    report = await audit_store(store, anchors=anchors, evidence=False, integrity=False, start=start)
    if not report.ok:
        shown = "; ".join(str(p) for p in report.problems[:5])
        more = f" and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
        log.error("refusing to start: the message log is broken: %s%s", shown, more)
        raise JournalBroken(
            f"the message log is broken ({shown}{more}); run `nswgw log verify` for every problem and restore the"
            " store from a backup that verifies",
            field="journal",
            details={"problems": [str(p) for p in report.problems[:100]]},
        )
    return report


class Anchoring:
    """Appends the store's journal head to ``path`` every ``interval`` seconds while it moves, and once at
    :meth:`stop`; with no ``path`` (no ``[journal] anchor``) it does nothing. :meth:`status` is the ``/readyz``
    check: failed once the store's head is behind the newest anchor (entries were removed from the end while the
    gateway ran)."""

    def __init__(self, store: Store, path: Path | None, *, interval: float, now: Callable[[], float]) -> None:
        self.store = store
        self.path = path
        self.interval = interval
        self._now = now
        self.newest: Anchor | None = None
        self._rounds = Periodic(
            "journal-anchor",
            interval,
            self.anchor_now,
            log=log,
            failure=f"could not anchor the journal head to {path}",
        )

    def load(self) -> list[Anchor]:
        """The anchors written so far (none without a file), read once at start: checked against the journal, and
        the newest one is where :meth:`start` goes on from."""
        if self.path is None:
            return []
        anchors = read_anchors(self.path)
        self.newest = max(anchors, key=lambda a: a.seq, default=None)
        return anchors

    def start(self, head: tuple[int, str]) -> None:
        """Anchor ``head`` (the head just verified, after :meth:`load`) unless it is anchored already, then keep
        anchoring."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if head[0] > 0 and (self.newest is None or self.newest.seq != head[0]):
            self._append(head)
        self._rounds.start()

    async def stop(self) -> None:
        if self._rounds.running:
            await self._rounds.stop()
            with contextlib.suppress(Exception):
                await self.anchor_now()

    async def anchor_now(self) -> Anchor | None:
        """Anchor the current head if it moved on since the last anchor; the newest anchor. A head behind the newest
        anchor (entries cut off the end) is never anchored: the anchor that proves the cut stays the newest."""
        if self.path is None:
            return None
        head = await self.store.journal_head()
        if head is not None and (self.newest is None or head.seq > self.newest.seq):
            self._append((head.seq, head.hash))
        return self.newest

    def _append(self, head: tuple[int, str]) -> None:
        assert self.path is not None
        anchor = Anchor(head[0], head[1], self._now())
        append_anchor(self.path, anchor)
        self.newest = anchor

    async def checks(self) -> dict[str, str]:
        """``{"journal_anchor": ...}`` for ``/readyz`` when anchoring, else nothing."""
        if self.path is None:
            return {}
        try:
            head = await self.store.journal_head()
        except NswError as exc:
            return {"journal_anchor": f"failed: {exc}"}
        return {"journal_anchor": self.status(head.seq if head is not None else 0)}

    def status(self, head_seq: int) -> str:
        if self.newest is not None and head_seq < self.newest.seq:
            return (
                f"failed: [{JournalBroken.code}] the journal head is entry {head_seq} but entry {self.newest.seq} was"
                f" anchored in {self.path}: entries were cut off the end"
            )
        return "ok"
