"""The connector runtime each agency deploys: transport seam (RabbitMQ or in memory), the
receive pipeline with durable effects, request/response, events and one-way messages,
handlers, and the connector's own database.

Imports the exchange core and the schema registry; nothing imports it but ``tabadul``.
"""

from connectors._access_log import SUBJECT_KEY_ENV, Access, AccessLog, SubjectKey, normalise
from connectors._api import Inbox, WebhookError, create_app, install_delivery
from connectors._api_dead_letters import DeadLetterOut, DeadLetterSummary
from connectors._config import (
    ConnectorConfig,
    build_connector,
    check_config,
    dead_letter_desk,
    load_config,
    sent_message_status,
    subject_accesses,
)
from connectors._dead_letters import (
    DeadLetterDesk,
    DeadLetterError,
    DeadLetterPage,
    DeadLetterView,
    NotResendable,
    UnknownDeadLetter,
)
from connectors._errors import (
    ConfigError,
    ConnectorError,
    NotConfirmed,
    RemoteError,
    RequestTimeout,
    SendRefused,
    StoreError,
    TransportError,
)
from connectors._handlers import Context, Delivery, Handler, Hold, Refuse, Transactional
from connectors._localbus import LocalBus
from connectors._memory import MemoryBroker, MemoryTransport
from connectors._metrics import Metrics
from connectors._pika import PikaTransport
from connectors._store import ConnectorStore
from connectors._transport import (
    ATTEMPT_HEADER,
    BUS_EXCHANGE,
    CONTENT_TYPE,
    DEAD_LETTER_EXCHANGE,
    REASON_HEADER,
    REJECT_HEADER,
    InboundMessage,
    OutboundMessage,
    Transport,
    dead_letter_queue,
    direct_key,
    event_key,
    queue_name,
    retry_queue,
)
from connectors._witness import (
    MessageLogKept,
    WitnessedLog,
    Witnessing,
    head_payload,
    witness_each_other,
)
from connectors.runtime import Connector, DirectorySource, MessageStatus, RuntimeSettings

__all__ = [
    "ATTEMPT_HEADER",
    "BUS_EXCHANGE",
    "CONTENT_TYPE",
    "DEAD_LETTER_EXCHANGE",
    "REASON_HEADER",
    "REJECT_HEADER",
    "SUBJECT_KEY_ENV",
    "Access",
    "AccessLog",
    "ConfigError",
    "Connector",
    "ConnectorConfig",
    "ConnectorError",
    "ConnectorStore",
    "Context",
    "DeadLetterDesk",
    "DeadLetterError",
    "DeadLetterOut",
    "DeadLetterPage",
    "DeadLetterSummary",
    "DeadLetterView",
    "Delivery",
    "DirectorySource",
    "Handler",
    "Hold",
    "InboundMessage",
    "Inbox",
    "LocalBus",
    "MemoryBroker",
    "MemoryTransport",
    "MessageLogKept",
    "MessageStatus",
    "Metrics",
    "NotConfirmed",
    "NotResendable",
    "OutboundMessage",
    "PikaTransport",
    "Refuse",
    "RemoteError",
    "RequestTimeout",
    "RuntimeSettings",
    "SendRefused",
    "StoreError",
    "SubjectKey",
    "Transactional",
    "Transport",
    "TransportError",
    "UnknownDeadLetter",
    "WebhookError",
    "WitnessedLog",
    "Witnessing",
    "build_connector",
    "check_config",
    "create_app",
    "dead_letter_desk",
    "dead_letter_queue",
    "direct_key",
    "event_key",
    "head_payload",
    "install_delivery",
    "load_config",
    "normalise",
    "queue_name",
    "retry_queue",
    "sent_message_status",
    "subject_accesses",
    "witness_each_other",
]
