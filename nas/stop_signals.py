"""Ctrl-C and SIGTERM stop a search cleanly, once.

Ray installs a SIGTERM handler that exits at once, which would leave the running trials
RUNNING until a resume noticed them; raising KeyboardInterrupt takes the driver's clean path
instead (the running candidates are queued for ``--resume``). A second signal while that
clean-up runs would break it half way (a traceback, no resume command), so it only says what is
happening.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def stopping_cleanly(
    say: Callable[[str], None],
    still: str = "still stopping: queuing the running candidates for --resume (a few seconds)",
) -> Iterator[None]:
    """Within the block, the first Ctrl-C or SIGTERM (docker stop, kill) raises
    KeyboardInterrupt and any later one is told `still` through `say`; the handlers before are
    restored after. Outside the main thread, where Python allows no handlers, nothing changes.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = _install(lambda: say(still)) if main else {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _install(tell_still_stopping: Callable[[], None]) -> dict[int, Any]:
    """Install the stopping handler; returns the handlers it replaced."""
    stopping = False
    told = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping, told
        if not stopping:
            stopping = True
            raise KeyboardInterrupt
        if not told:
            told = True
            tell_still_stopping()

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
