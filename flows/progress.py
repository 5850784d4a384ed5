"""A process-local hook so the CLI can draw progress while the flow runs in its threads.

Events: ("planned", "<n>") once the run knows how many objects it will process;
("stage", "<stage> <uri>") as preparation enters a stage of an object (`clip i/n` for the
clip stages); ("prepared", "<clips> <uri>"); ("captioned", "<uri>") per clip; and
("finished", "<outcome> <uri>") as each object ends.
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
