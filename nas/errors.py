"""Errors that mean "the user gave us something wrong".

Every layer raises `InputError` for bad flags, files, URLs or data so that the CLI can print one
line and exit with code 2 instead of a traceback. Anything else escaping to the CLI is a bug or a
failed run (exit code 1).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input; the message says what is wrong and how to fix it, on one line."""


class SearchFailed(RuntimeError):
    """The search ran but could not do its job (exit code 1); the message says why."""
