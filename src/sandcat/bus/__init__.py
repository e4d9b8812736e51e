"""The event bus: how committed messages reach the connections of other instances.

``Bus`` is the interface (``bus``); ``LocalBus`` the in-process
implementation (``local``); ``KafkaBus`` the cluster one (``kafka``, imported
only when configured). Events are committed messages with their recipients
(``event``). In cluster mode the persister writes each event to the outbox
in the message's own transaction, the publisher relays the outbox to the bus
and a consumer on every instance delivers what it reads to local connections
(``sandcat.pipeline.publisher``, ``sandcat.pipeline.consumer``).
"""

from sandcat.bus.bus import Bus, BusUnavailable, Subscription
from sandcat.bus.event import BadEvent, Event, decode_event, encode_event
from sandcat.bus.local import LocalBus

__all__ = [
    "BadEvent",
    "Bus",
    "BusUnavailable",
    "Event",
    "LocalBus",
    "Subscription",
    "decode_event",
    "encode_event",
]
