"""Subscriptions (geth ``rpc/subscription.go``): ``<ns>_subscribe`` and ``<ns>_unsubscribe`` on
connections that can carry notifications (WebSocket, IPC), never on HTTP.

A namespace offers a subscription by marking a method with ``@subscription``: its camelCase
name is what ``eth_subscribe``'s first parameter selects (``new_heads`` -> ``"newHeads"``),
the remaining parameters are its arguments. The method runs when the call arrives and
returns a ``Feed``: it takes what it needs at once (a bus subscription, so nothing posted
after the call is missed) and its ``run(notify)`` then pushes results until cancelled.
``run`` starts only after the reply carrying the subscription id has been queued, so a
client never sees a notification for an id it has not been given (geth buffers until
``activate`` for the same reason). ``close()`` releases what the method took; the
connection calls it exactly once, on unsubscribe, on disconnect, or if the reply was never
sent, so a feed whose ``run`` never started still lets go of its bus subscription.

Ids are geth's: 16 random bytes as a hex quantity, leading zero digits trimmed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

SUBSCRIBE_SUFFIX = "_subscribe"  # geth subscribeMethodSuffix
UNSUBSCRIBE_SUFFIX = "_unsubscribe"  # geth unsubscribeMethodSuffix
NOTIFICATION_SUFFIX = "_subscription"  # geth notificationMethodSuffix
KEY_SEPARATOR = "/"  # method-table key of a subscription: "eth_subscribe/newHeads" (no method name has one)
ERR_NOTIFICATIONS_UNSUPPORTED = "notifications not supported"  # geth ErrNotificationsUnsupported (-32601)
ERR_SUBSCRIPTION_NOT_FOUND = "subscription not found"  # geth ErrSubscriptionNotFound (-32000)

F = TypeVar("F", bound=Callable[..., Any])
Notify = Callable[[Any], None]


class Feed(Protocol):
    """What a ``@subscription`` method returns (see the module docstring)."""

    async def run(self, notify: Notify) -> None:
        """Call ``notify(result)`` for each notification until cancelled."""

    def close(self) -> None:
        """Release what the subscription method took; called once, whether ``run`` started or not."""


def subscription(method: F) -> F:
    """Mark a namespace method as a subscription (geth: a method returning ``*rpc.Subscription``)."""
    method.__rpc_subscription__ = True  # type: ignore[attr-defined]
    return method


def is_subscription(method: Any) -> bool:
    return bool(getattr(method, "__rpc_subscription__", False))


def subscription_key(namespace: str, name: str) -> str:
    """Where a subscription sits in a method table: ``eth_subscribe/newHeads``."""
    return f"{namespace}{SUBSCRIBE_SUFFIX}{KEY_SEPARATOR}{name}"


def new_id() -> str:
    """geth rpc.NewID: 16 random bytes as a hex quantity (leading zero digits trimmed)."""
    return "0x" + (secrets.token_bytes(16).hex().lstrip("0") or "0")


class Subscriber(Protocol):
    """The side of a connection the dispatcher talks to for ``_subscribe``/``_unsubscribe`` calls."""

    def subscribe(self, namespace: str, feed: Feed) -> str:
        """Register ``feed`` and return its id; it starts once this call's reply is queued."""

    def unsubscribe(self, sub_id: str) -> bool:
        """Stop a subscription of this connection; False if there is no such id."""


__all__ = [
    "Feed", "Notify", "Subscriber", "subscription", "is_subscription", "subscription_key", "new_id",
    "SUBSCRIBE_SUFFIX", "UNSUBSCRIBE_SUFFIX", "NOTIFICATION_SUFFIX", "KEY_SEPARATOR",
    "ERR_NOTIFICATIONS_UNSUPPORTED", "ERR_SUBSCRIPTION_NOT_FOUND",
]
