"""AS4 (ebMS 3.0 One-Way/Push and One-Way/Pull) for ASEAN partners.

* :mod:`adapters.as4.ebms`: the ebMS 3.0 message model (UserMessage, Receipt, Error signals);
* :mod:`adapters.as4.mime`: SOAP 1.2 with MIME attachments (multipart/related);
* :mod:`adapters.as4.pmode`: PMode-style configuration per partner (frozen pydantic models);
* :mod:`adapters.as4.messages`: building and opening signed/encrypted user messages and signals;
* :mod:`adapters.as4.receiver`: the aiohttp receiver with duplicate elimination and PMode
  matching on parties, Service and Action;
* :mod:`adapters.as4.sent`: what the adapter sent, byte for byte, kept across restarts and shared by every node;
* :mod:`adapters.as4.pull`: One-Way/Pull, the MPC queue of a destination partners pull from and the poller of a
  partner we pull from;
* :mod:`adapters.as4.adapter`: :class:`As4Adapter`, registered as ``as4``.

Security (WS-Security 1.1 signatures over eb:Messaging, Body and attachments;
AES-128-GCM payload encryption with RSA-OAEP key transport) lives in
:mod:`signing.wss` and :mod:`signing.xenc`.

State: what AS4 must remember is gateway state, kept in the gateway's store (SQLite or PostgreSQL) through the
:class:`~gateway.ports.AdapterState` the gateway hands each adapter (namespace ``destination:NAME``) and each
inbound endpoint (``inbound:NAME``): the messages the adapter sent, byte for byte, until their receipt arrives
and after (:class:`StateSentStore`), and the (partner PartyId, MessageId) pairs the endpoint received with the
receipt each was answered with (:class:`StateDuplicateStore`). Every node of a gateway on PostgreSQL shares
them: a resend picked up by another node carries the recorded bytes (the partner's receipt matches), a duplicate
arriving at another node is answered with the original receipt and not submitted again; a SQLite gateway keeps
them across restarts. Each is kept ``retention`` seconds (option of the adapter and of the endpoint, default 30
days). There are no node-local files: the former options ``sent_store`` and ``duplicate_store`` are refused at
load.
"""

from adapters.as4.adapter import PROPERTY_HEADER_PREFIX, As4Adapter
from adapters.as4.ebms import EbmsError, PartInfo, Party, Property, SignalMessage, UserMessage
from adapters.as4.messages import (
    As4Partner,
    OutgoingMessage,
    Payload,
    ReceivedMessage,
    VerifiedSignal,
    build_error_signal,
    build_receipt,
    build_user_message,
    check_receipt,
    open_user_message,
    select_agreement,
    verify_signal,
)
from adapters.as4.pmode import PartyConfig, PMode, PropertyConfig, ReceptionAwareness, SecurityConfig
from adapters.as4.pull import Puller, PullQueue
from adapters.as4.receiver import (
    As4Receiver,
    DuplicateStore,
    ErrorSignalLimits,
    MemoryDuplicateStore,
    SignalBudget,
    StateDuplicateStore,
)
from adapters.as4.sent import SentRecord, SentStore, StateSentStore

__all__ = [
    "As4Adapter",
    "As4Partner",
    "As4Receiver",
    "DuplicateStore",
    "EbmsError",
    "ErrorSignalLimits",
    "MemoryDuplicateStore",
    "OutgoingMessage",
    "PMode",
    "PROPERTY_HEADER_PREFIX",
    "Party",
    "PartInfo",
    "PartyConfig",
    "Payload",
    "PullQueue",
    "Puller",
    "Property",
    "PropertyConfig",
    "ReceivedMessage",
    "ReceptionAwareness",
    "SecurityConfig",
    "SentRecord",
    "SentStore",
    "SignalBudget",
    "SignalMessage",
    "StateDuplicateStore",
    "StateSentStore",
    "UserMessage",
    "VerifiedSignal",
    "build_error_signal",
    "build_receipt",
    "build_user_message",
    "check_receipt",
    "open_user_message",
    "select_agreement",
    "verify_signal",
]
