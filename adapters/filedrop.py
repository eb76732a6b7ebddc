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
Options (:class:`FileDropOptions`): ``extension`` (default ``xml``).
The file is the document and nothing else: the enterprise an intermediary submitted a message for has no
place of its own here (the document names it, as the gateway checked when it took the message in).

Inbound (:class:`FileDropInbox`, inbound endpoint ``filedrop``): polls ``inbox/`` every ``interval``
seconds (default 0.5; no extra dependency), oldest first, skipping hidden and ``.tmp``/``.part`` files
(a writer should drop files with a rename, as we do). Each file is submitted through the broker as the
configured ``party`` and then moved to ``processed/`` (accepted or duplicate) or ``error/`` with
``NAME.error.json`` (refused: ``{"error": {"code", "message", "field", ...}}``); a name already there
gets a ``.1``, ``.2``... before its extension, so no earlier file is overwritten.
The message id is the VNSW ``Header/Reference/messageId`` when the file is a VNSW Envelope, else
``sha256:<hex of the content>``; the broker deduplicates by (party, message id), so a file that was
submitted but not yet moved when the gateway stopped is acknowledged as a duplicate on the next scan and
moved then: never lost, never submitted twice. Options (:class:`FileDropInboxOptions`): ``path`` (the drop
directory, a plain path relative to the configuration file or a ``file:///`` URL), ``party``,
``document_type`` (for files that are not VNSW envelopes), ``format`` (default ``xml``), ``interval``,
``document_types`` as for ``vnsw-soap``. A file larger than ``gateway.max_message_bytes`` is moved to
``error/`` unread with ``XML_TOO_LARGE`` (nothing is stored for it), as the HTTP entry points refuse such a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from gateway.config import FilePath
from gateway.errors import (
    ConfigError,
    GatewayError,
    NswError,
    PartnerRejected,
    PartnerUnavailable,
    RequestInvalid,
    XmlTooLarge,
)
from gateway.model import PartyId, SubmissionEnvelope
from gateway.ports import Adapter, AdapterState, InboundEndpoint, Intake, OutboundMessage, Receipt
from gateway.wire import Ack

__all__ = [
    "FileDropAdapter",
    "FileDropOptions",
    "FileDropInbox",
    "FileDropInboxOptions",
    "DropDirectory",
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


def _plain_directory(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return str(drop_directory(value))
    except ConfigError as exc:
        raise PydanticCustomError("drop_directory", "{reason}", {"reason": exc.message}) from None


DropDirectory = Annotated[FilePath, BeforeValidator(_plain_directory)]
"""A drop directory: a plain path (relative to the configuration file) or a ``file:///`` URL."""


class FileDropOptions(BaseModel):
    """``[destinations.NAME.options]`` of the ``filedrop`` adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    extension: str = Field("xml", pattern=r"^\.?[A-Za-z0-9._-]+$")
    """Extension of the files written to ``outbox/`` (``<gateway id>.<extension>``)."""


class FileDropAdapter(Adapter):
    """Writes each message atomically into the party's ``outbox/``."""

    scheme: ClassVar[str] = "filedrop"
    recoverable = Adapter.recoverable
    Options: ClassVar[type[BaseModel]] = FileDropOptions
    options: FileDropOptions

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, options=options, state=state)
        self.extension = self.options.extension.lstrip(".")

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


class FileDropInboxOptions(BaseModel):
    """``[inbound.NAME.options]`` of the ``filedrop`` endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    path: DropDirectory
    """The drop directory (``inbox/``, ``processed/``, ``error/``, ``outbox/`` are created in it)."""
    party: str = Field(min_length=1)
    """The gateway party the files are submitted as."""
    document_type: str | None = None
    """Document type of files that are not VNSW envelopes (such a file is refused without it)."""
    format: str = "xml"
    """Format of files that are not VNSW envelopes (a mappings registry name, or ``xml``)."""
    interval: float = Field(0.5, gt=0)
    """Seconds between two scans of ``inbox/``."""
    document_types: dict[str, str] = Field(default_factory=dict)
    """VNSW ``documentType`` (or ``"<documentType>/<type>/<function>"``) → the gateway's document type."""


class FileDropInbox(InboundEndpoint):
    """Watches ``inbox/`` and submits each file through the broker."""

    scheme: ClassVar[str] = "filedrop"
    Options: ClassVar[type[BaseModel]] = FileDropInboxOptions
    options: FileDropInboxOptions

    def __init__(
        self,
        name: str = "filedrop",
        *,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(name, options=options, state=state)
        self.root = Path(self.options.path)
        self.party = self.options.party
        self.interval = self.options.interval
        self.document_type = self.options.document_type
        self.format = self.options.format
        self.document_types: dict[str, str] = dict(self.options.document_types)
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
        """Submit one file, then move it to ``processed/`` or ``error/`` (with its ``.error.json``).
        A file larger than ``gateway.max_message_bytes`` is refused unread (``XML_TOO_LARGE``), as over HTTP."""
        limit = intake.config.gateway.max_message_bytes
        try:
            size = path.stat().st_size
            data = b"" if size > limit else await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return  # moved by a concurrent scan
        error: dict[str, Any] | None = None
        try:
            if size > limit or len(data) > limit:
                raise XmlTooLarge(f"file is {max(size, len(data))} bytes; the limit is {limit}", field="body")
            envelope = self.envelope_for(data)
            result = await intake.submit(PartyId(self.party), envelope, data)
            error = result.ack.error
            if error is not None:
                error = {**error, "ack": Ack.of(result.ack).to_json()}  # times as the HTTP API answers them
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
