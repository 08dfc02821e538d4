"""The model card (the keys models.export.model_metadata writes) reaches the page's hello and `models`."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.test_serve_e2e import _collect, _start

ROOT = Path(__file__).resolve().parents[1]
CARD = {"name": "test-emotion-model", "summary": "7 emotions; a test card", "licence": "CC BY-NC-SA 4.0 (test)",
        "version": "2026.11.29", "date": "2026-11-29", "corpora": json.dumps(["ravdess", "tess"])}


def _models_with_card(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the shipped models (and the encoder and CNN files they name); the emotion copy carries CARD."""
    import onnx

    from models.onnx_model import OnnxClassifier, default_models

    shipped = default_models()
    out = {}
    for task, path in shipped.items():
        meta = OnnxClassifier(path).metadata
        for companion in (meta.get("encoder"), meta.get("cnn")):
            if companion and not (tmp_path / companion).exists():
                shutil.copyfile(path.parent / companion, tmp_path / companion)
        model = onnx.load(str(path))
        if task == "emotion":
            keep = [p for p in model.metadata_props if p.key not in CARD]
            del model.metadata_props[:]
            model.metadata_props.extend(keep)
            for k, v in CARD.items():
                model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
        out[task] = tmp_path / path.name
        onnx.save(model, str(out[task]))
    return out["emotion"], out["gender"]


def test_models_command_shows_the_card(tmp_path):
    emotion, gender = _models_with_card(tmp_path)
    out = subprocess.run([sys.executable, "-m", "streamer", "models", "--emotion-model", str(emotion),
                          "--gender-model", str(gender)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    emotion_part = out.stdout.split("gender:")[0]
    for key in ("name", "summary", "licence", "version", "date"):
        assert f"{key}:" in emotion_part and CARD[key] in emotion_part, key
    assert "ravdess, tess" in emotion_part


def test_the_card_reaches_hello(tmp_path):
    emotion, gender = _models_with_card(tmp_path)
    clip = tmp_path / "noise.wav"
    sf.write(clip, (0.01 * np.random.default_rng(0).standard_normal(16000 * 3)).astype(np.float32), 16000)
    proc, url = _start("--source", str(clip), "--emotion-model", str(emotion), "--gender-model", str(gender))
    try:
        ws_url = url.replace("http://", "ws://").split("?")[0].rstrip("/") + "/ws"
        hello = asyncio.run(_collect(ws_url, until_end=False, timeout=30))[0]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert hello["type"] == "hello"
    card = hello["model_card"]
    assert {k: card[k] for k in ("name", "summary", "licence", "version", "date")} == \
        {k: CARD[k] for k in ("name", "summary", "licence", "version", "date")}
    assert card["corpora"] == "ravdess, tess"
    assert "Traceback" not in err
