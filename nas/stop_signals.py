"""Ctrl-C and SIGTERM stop a search cleanly, once.

Ray installs a SIGTERM handler that exits at once, which would leave the running trials
RUNNING until a resume noticed them; raising KeyboardInterrupt takes the driver's clean path
instead (the running candidates are queued for ``--resume``). A second signal while that
clean-up runs would break it half way (a traceback, no resume command), so it only says what is
happening.

Python runs a signal handler between any two bytecodes, finalizers included, and an exception a
handler raises inside a finalizer is printed and dropped: the KeyboardInterrupt is then lost
while the handler has already taken the signal as the stop. `StopRequest.raise_if_lost` lets a
loop raise it again at a safe point.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class StopRequest:
    """Whether a stop was asked for, and whether its KeyboardInterrupt reached the code."""

    def __init__(self) -> None:
        self.requested = False
        self.delivered = False

    def raise_if_lost(self) -> None:
        """Raise the KeyboardInterrupt of a stop whose own one a finalizer swallowed."""
        if self.requested and not self.delivered:
            self.delivered = True
            raise KeyboardInterrupt


@contextmanager
def stopping_cleanly(
    say: Callable[[str], None],
    still: str = "still stopping: queuing the running candidates for --resume (a few seconds)",
) -> Iterator[StopRequest]:
    """Within the block, the first Ctrl-C or SIGTERM (docker stop, kill) raises
    KeyboardInterrupt and any later one is told `still` through `say`; the handlers before are
    restored after. Outside the main thread, where Python allows no handlers, nothing changes.
    """
    request = StopRequest()
    main = threading.current_thread() is threading.main_thread()
    previous = _install(request, lambda: say(still)) if main else {}
    try:
        yield request
    except KeyboardInterrupt:
        request.delivered = True
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _install(request: StopRequest, tell_still_stopping: Callable[[], None]) -> dict[int, Any]:
    """Install the stopping handler; returns the handlers it replaced."""
    told = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal told
        if not request.requested:
            request.requested = True
            raise KeyboardInterrupt
        if not told:
            told = True
            tell_still_stopping()

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
