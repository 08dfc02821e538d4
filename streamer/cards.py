"""A model's card as its metadata carries it (written by models.export.model_metadata): shown on the page's
``hello`` and by `emotion-monitor models`."""
from __future__ import annotations

import json

__all__ = ["CARD_KEYS", "model_card"]

CARD_KEYS = ("name", "version", "date", "summary", "licence", "corpora")


def model_card(metadata: dict, *, fallback_name: str) -> dict:
    """{key: text} for CARD_KEYS; missing keys are empty, except the name (``fallback_name``) and the corpora,
    which older models only list in ``training_data.by_corpus``. ``corpora`` is a comma-separated string."""
    card = {k: str(metadata.get(k, "")) for k in CARD_KEYS}
    card["name"] = card["name"] or fallback_name
    card["corpora"] = ", ".join(_corpora(metadata))
    return card


def _corpora(metadata: dict) -> list[str]:
    text = metadata.get("corpora", "")
    if text and not text.lstrip().startswith("["):  # plain text rather than a JSON list
        return [c.strip() for c in text.split(",") if c.strip()]
    for key, pick in (("corpora", lambda v: v), ("training_data", lambda v: sorted(v.get("by_corpus", {})))):
        try:
            value = pick(json.loads(metadata[key]))
        except (KeyError, ValueError, TypeError, AttributeError):
            continue
        if isinstance(value, list) and all(isinstance(c, str) for c in value):
            return value
    return []
