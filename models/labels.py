"""Label sets of the emotion and gender models, and mappings from the corpora's codes."""
from __future__ import annotations

__all__ = ["EMOTIONS", "GENDERS", "EMOTION_MODELS", "LANGUAGES", "emotion_model_name", "ravdess_emotion",
           "ravdess_gender", "ravdess_intensity", "tess_emotion", "ased_emotion", "ASED_GENDER"]

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
GENDERS: tuple[str, ...] = ("female", "male")

# The emotion model per speaker language: "any" is trained on every corpus (English and Amharic), "en" on the
# English ones alone, which the Amharic corpus then no longer pulls away from English voices (models/HISTORY.md).
# The values name the shipped files (models/<name>.onnx) and the tasks of evaluate's report.
EMOTION_MODELS: dict[str, str] = {"any": "emotion", "en": "emotion-en"}
LANGUAGES: tuple[str, ...] = tuple(EMOTION_MODELS)


def emotion_model_name(language: str = "any") -> str:
    """The emotion model for a language in LANGUAGES: "emotion" or "emotion-en"."""
    try:
        return EMOTION_MODELS[language]
    except KeyError:
        raise ValueError(f"no emotion model for language {language!r} "
                         f"(expected one of {', '.join(LANGUAGES)})") from None

# RAVDESS "calm" (02) has no counterpart in TESS and is acoustically close to neutral: merged.
_RAVDESS_EMOTION = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
_RAVDESS_INTENSITY = {"01": "normal", "02": "strong"}
_TESS_EMOTION = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
                 "neutral": "neutral", "ps": "surprised", "sad": "sad"}


def ravdess_emotion(code: str) -> str:
    """RAVDESS emotion field ("01".."08") -> a name in EMOTIONS (calm -> neutral)."""
    try:
        return _RAVDESS_EMOTION[code]
    except KeyError:
        raise ValueError(f"unknown RAVDESS emotion code {code!r} (expected one of {sorted(_RAVDESS_EMOTION)})") from None


def ravdess_intensity(code: str) -> str:
    """RAVDESS intensity field ("01" normal, "02" strong)."""
    try:
        return _RAVDESS_INTENSITY[code]
    except KeyError:
        raise ValueError(f"unknown RAVDESS intensity code {code!r} (expected '01' or '02')") from None


def ravdess_gender(actor: int) -> str:
    """RAVDESS actors: odd id = male, even id = female."""
    if actor <= 0:
        raise ValueError(f"RAVDESS actor id must be positive, got {actor}")
    return "male" if actor % 2 else "female"


def tess_emotion(code: str) -> str:
    """TESS emotion suffix ("angry", "fear", "ps", ...) -> a name in EMOTIONS."""
    try:
        return _TESS_EMOTION[code.lower()]
    except KeyError:
        raise ValueError(f"unknown TESS emotion {code!r} (expected one of {sorted(_TESS_EMOTION)})") from None


_ASED_EMOTION = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}
ASED_GENDER = {"01": "female", "02": "male"}


def ased_emotion(code: str) -> str:
    """ASED emotion letter (n, f, h, s/S, a) -> a name in EMOTIONS."""
    try:
        return _ASED_EMOTION[code.lower()]
    except KeyError:
        raise ValueError(f"unknown ASED emotion code {code!r} (expected one of {sorted(_ASED_EMOTION)})") from None
