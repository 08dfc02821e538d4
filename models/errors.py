"""Exceptions raised by the models package. Every message is one line, so a CLI can print it as is."""
from __future__ import annotations

__all__ = ["ModelError"]


class ModelError(Exception):
    """A model file is missing, unreadable, or does not match the feature pipeline."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())
