"""User-facing errors: one line that names the bad key or file, never a traceback.

Anything a user can get wrong (a config key, a value, a file) raises `UserError`; the
entry points catch it, print its one line and exit with status 2. Bugs stay exceptions.
"""

from __future__ import annotations

import sys


class UserError(Exception):
    """A mistake in the user's input; its message is the single line shown to them."""


class ConfigError(UserError):
    """A bad config value: names the key, the value given and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"config error: {key}={value!r} is not allowed; expected {allowed}")


def exit_with(err: UserError, code: int = 2) -> None:
    """Print the error's one line to stderr and leave with a non-zero status."""
    print(f"moebench: {err}", file=sys.stderr)
    sys.exit(code)
