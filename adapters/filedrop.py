"""``filedrop``: a watched directory for legacy ministry systems and batch intermediaries.

Layout of one drop directory (the connection string ``file:///var/nsw/mard`` or a plain path)::

    inbox/        files the party drops for the gateway (inbound)
    processed/    inbox files the gateway has durably accepted
    error/        inbox files it refused, each with a sidecar NAME.error.json (the coded error)
    outbox/       files the gateway delivers to the party (outbound)

Outbound (:class:`FileDropAdapter`, adapter ``filedrop``): each message is written as
``outbox/<gateway id>.<ext>`` atomically: written to a hidden temporary name in ``outbox/``, fsynced,
``os.replace``d into place, and the directory fsynced. A retry rewrites the same name (the same message
id), so a reader sees each message once, complete or not at all. The receipt is the file name written.
Errors: a missing or unwritable directory, a full disk are :class:`PartnerUnavailable` (retried); a
connection string that is not a directory path is :class:`PartnerRejected`.
Options: ``extension`` (default ``xml``).

Inbound (:class:`FileDropInbox`, inbound endpoint ``filedrop``): polls ``inbox/`` every ``interval``
seconds (default 0.5; no extra dependency), oldest first, skipping hidden and ``.tmp``/``.part`` files
(a writer should drop files with a rename, as we do). Each file is submitted through the broker as the
configured ``party`` and then moved to ``processed/`` (accepted or duplicate) or ``error/`` with
``NAME.error.json`` (refused: ``{"error": {"code", "message", "field", ...}}``); a name already there
gets a ``.1``, ``.2``... before its extension, so no earlier file is overwritten.
The message id is the VNSW ``Header/Reference/messageId`` when the file is a VNSW Envelope, else
``sha256:<hex of the content>``; the broker deduplicates by (party, message id), so a file that was
submitted but not yet moved when the gateway stopped is acknowledged as a duplicate on the next scan and
moved then: never lost, never submitted twice. Options: ``path`` (the drop directory), ``party``,
``document_type`` (for files that are not VNSW envelopes), ``format`` (default ``xml``; ``vnsw`` for VNSW
envelopes), ``interval``, ``document_types``/``parties`` as for ``vnsw-soap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from gateway.errors import ConfigError, GatewayError, NswError, PartnerRejected, PartnerUnavailable, RequestInvalid
from gateway.model import PartyId, SubmissionEnvelope
from gateway.ports import Adapter, InboundEndpoint, Intake, OutboundMessage, Receipt

__all__ = [
    "FileDropAdapter",
    "FileDropInbox",
    "drop_directory",
    "atomic_write",
    "INBOX",
    "OUTBOX",
    "PROCESSED",
    "ERROR",
]

log = logging.getLogger("nswgw.filedrop")

INBOX, OUTBOX, PROCESSED, ERROR = "inbox", "outbox", "processed", "error"
_SKIP_SUFFIXES = (".tmp", ".part", ".error.json")


def drop_directory(url: str, *, field: str = "url") -> Path:
    """The directory named by ``file:///path`` or a plain path."""
    if url.startswith("file:"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"a drop directory must be local, not on {parsed.netloc!r}", field=field)
        path = unquote(parsed.path)
    elif "://" in url:
        raise ConfigError(f"{url!r} is not a directory path or file:// URL", field=field)
    else:
        path = url
    if not path:
        raise ConfigError("the drop directory is empty", field=field)
    return Path(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(directory: Path, name: str, data: bytes) -> Path:
    """Write ``directory/name`` so that it appears complete or not at all (temp name, fsync, ``os.replace``)."""
    target = directory / name
    tmp = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return target


class FileDropAdapter(Adapter):
    """Writes each message atomically into the party's ``outbox/``."""

    scheme: ClassVar[str] = "filedrop"
    recoverable = Adapter.recoverable

    def __init__(self, url: str, *, timeout: float = 30.0, options: dict[str, Any] | None = None) -> None:
        super().__init__(url, timeout=timeout, options=options)
        self.extension = str(self.options.get("extension", "xml")).lstrip(".")

    async def deliver(self, message: OutboundMessage) -> Receipt:
        try:
            outbox = drop_directory(self.url) / OUTBOX
        except ConfigError as exc:
            raise PartnerRejected(exc.message, field="url") from exc
        name = f"{message.message_id}.{self.extension}"
        try:
            await asyncio.to_thread(atomic_write, outbox, name, message.payload)
        except OSError as exc:
            raise PartnerUnavailable(
                f"cannot write {outbox / name}: {exc.strerror or exc}", field=f"{OUTBOX}/{name}"
            ) from exc
        return Receipt(message_id=message.message_id, raw=json.dumps({"file": f"{OUTBOX}/{name}"}).encode())


def message_id_of(data: bytes) -> tuple[str, Any]:
    """(message id, VNSW header or ``None``): the envelope's ``messageId``, else a content hash."""
    from adapters.vnsw_soap.envelope import read_header
    from signing.xml import parse_xml

    if b"<Envelope" in data[:4096]:
        header = read_header(parse_xml(data))
        return header.message_id, header
    return "sha256:" + hashlib.sha256(data).hexdigest(), None


class FileDropInbox(InboundEndpoint):
    """Watches ``inbox/`` and submits each file through the broker."""

    scheme: ClassVar[str] = "filedrop"

    def __init__(self, name: str = "filedrop", *, options: dict[str, Any] | None = None) -> None:
        super().__init__(name, options=options)
        field = f"inbound.{name}.options"
        if "path" not in self.options:
            raise ConfigError("the filedrop inbox needs its drop directory", field=f"{field}.path")
        self.root = drop_directory(str(self.options["path"]), field=f"{field}.path")
        party = self.options.get("party")
        if not isinstance(party, str) or not party:
            raise ConfigError("the filedrop inbox needs the party that drops files", field=f"{field}.party")
        self.party = party
        self.interval = float(self.options.get("interval", 0.5))
        self.document_type = self.options.get("document_type")
        self.format = str(self.options.get("format", "xml"))
        self.document_types: dict[str, str] = dict(self.options.get("document_types") or {})
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def _ensure_dirs(self) -> None:
        for sub in (INBOX, PROCESSED, ERROR, OUTBOX):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    async def start(self, intake: Intake) -> None:
        await asyncio.to_thread(self._ensure_dirs)
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(intake), name=f"filedrop:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            await task  # the loop finishes the file in hand, then returns

    async def _run(self, intake: Intake) -> None:
        while not self._stopping.is_set():
            try:
                await self.scan(intake)
            except Exception:  # a scan failure (disk, store) must not kill the watcher: retry next round
                log.exception("filedrop %s: scan failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    def _pending(self) -> list[Path]:
        inbox = self.root / INBOX
        files = [
            p
            for p in inbox.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(_SKIP_SUFFIXES)
        ]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    async def scan(self, intake: Intake) -> int:
        """Submit every file now in ``inbox/``; the number handled."""
        files = await asyncio.to_thread(self._pending)
        for path in files:
            if self._stopping.is_set() and self._task is not None:
                break
            await self.handle(intake, path)
        return len(files)

    def envelope_for(self, data: bytes) -> SubmissionEnvelope:
        message_id, header = message_id_of(data)
        if header is not None:
            key = f"{header.document_type}/{header.type}/{header.function}"
            doc = self.document_types.get(key) or self.document_types.get(header.document_type) or header.document_type
            return SubmissionEnvelope(
                sender=PartyId(self.party),
                message_id=message_id,
                document_type=doc,
                conversation_id=header.reference,
                reference=header.reference,
                procedure=header.document_type,
                format="vnsw",
            )
        if not self.document_type:
            raise RequestInvalid(
                "a file that is not a VNSW Envelope needs the inbox's document_type",
                field=f"inbound.{self.name}.options.document_type",
            )
        return SubmissionEnvelope(
            sender=PartyId(self.party), message_id=message_id, document_type=str(self.document_type), format=self.format
        )

    async def handle(self, intake: Intake, path: Path) -> None:
        """Submit one file, then move it to ``processed/`` or ``error/`` (with its ``.error.json``)."""
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return  # moved by a concurrent scan
        error: dict[str, Any] | None = None
        try:
            envelope = self.envelope_for(data)
            result = await intake.submit(PartyId(self.party), envelope, data)
            error = result.ack.error
            if error is not None:
                error = {**error, "ack": result.ack.to_dict()}
        except NswError as exc:
            if exc.retryable or isinstance(exc, GatewayError) and not isinstance(exc, ConfigError):
                log.warning("filedrop %s: %s stays in the inbox: %s", self.name, path.name, exc)
                return  # the gateway's fault: try again on the next scan
            error = exc.to_dict()
        await asyncio.to_thread(self._file, path, error)

    def _file(self, path: Path, error: dict[str, Any] | None) -> None:
        target = self.root / (ERROR if error is not None else PROCESSED)
        name = path.name
        n = 0
        while (target / name).exists():  # a party that reuses file names: keep every earlier file
            n += 1
            name = f"{path.stem}.{n}{path.suffix}"
        if error is not None:
            atomic_write(
                target,
                f"{name}.error.json",
                json.dumps({"file": path.name, "error": error}, indent=2, sort_keys=True).encode(),
            )
        os.replace(path, target / name)
        _fsync_dir(target)
        _fsync_dir(path.parent)
