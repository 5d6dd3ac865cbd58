"""Errors shared by the command-line modules."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad input from the user (file, key, value): reported without a traceback, exit 2."""
