"""The connector runtime: sends with the sender's checks, receives through the pipeline of
docs/protocol.md §8 with durable effects, dispatches to handlers, and answers requests.

Its parts, each in a module of its own, share one :class:`~connectors.runtime._core.Core`:

- the outbox (``_outbox``): sender checks, build and sign, log, publish; what it makes is a
  ``Sealed`` value carrying the bytes, their parsed envelope and the routing;
- the receiver (``_inbound``): the batch pipeline; the inspector's verdict carries the parsed
  envelope, so each delivery is parsed once;
- the pending-request table (``_pending``);
- handling (``_handling``): handler workers, retries, leases and takeover, done marks, the
  pull inbox;
- :class:`Connector` (``_connector``): the façade applications use, with the lifecycle.

A delivery is acknowledged only once its outcome is durable; a redelivered message is a
duplicate and never reaches a handler twice; a message in the inbox survives a crash and is
handled after restart, or by another replica once its lease runs out (``takeover_after``).
Handlers run on worker threads; a failing handler is retried with backoff and, after the
last attempt, dead-lettered as ``handler-failed``.
"""

from connectors.runtime._connector import Connector
from connectors.runtime._outbox import Sealed
from connectors.runtime._receipts import MessageStatus, message_status
from connectors.runtime._settings import DirectorySource, RuntimeSettings

__all__ = [
    "Connector",
    "DirectorySource",
    "MessageStatus",
    "RuntimeSettings",
    "Sealed",
    "message_status",
]
