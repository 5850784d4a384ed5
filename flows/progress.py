"""A process-local hook so the CLI can draw progress while the flow runs in its threads.

Events: ("planned", "<n>") once the run knows how many objects it will process, then
("finished", "<outcome> <uri>") as each one ends.
"""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[str, str], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Register a listener; returns the function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def emit(event: str, detail: str) -> None:
    for listener in list(_listeners):
        listener(event, detail)
