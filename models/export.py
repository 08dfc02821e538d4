"""sklearn Pipeline -> ONNX (opset 17, input "features" [N, D] float32, output "probs" [N, C] float32)."""
from __future__ import annotations

import json
from pathlib import Path

from dsp.config import FeatureConfig
from dsp.pooling import POOLING_VERSION, vector_dim

from .encoder import DEFAULT_ENCODER, ENCODER_DIM
from .onnx_model import INPUT_NAME, OUTPUT_NAME

__all__ = ["OPSET", "to_onnx", "save_onnx"]

OPSET = 17


def to_onnx(model, *, labels, n_features: int = vector_dim(ENCODER_DIM), metadata: dict | None = None):
    """An onnx.ModelProto whose "probs" output has one column per label, in label order.

    model: a fitted sklearn classifier or Pipeline with predict_proba and classes_ == range(len(labels)).
    """
    import onnx
    from skl2onnx import to_onnx as skl_to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    classes = list(getattr(model, "classes_", []))
    if classes != list(range(len(labels))):
        raise ValueError(f"model classes {classes} must be 0..{len(labels) - 1} (one per label)")
    onx = skl_to_onnx(model, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
                      target_opset={"": OPSET, "ai.onnx.ml": 3}, options={id(model): {"zipmap": False}})
    _rename_output(onx)
    # skl2onnx lists the opset imports in no fixed order (seen both ways in two runs): sort them, so that
    # `train` writes byte-identical files from the same data.
    opsets = sorted(((o.domain, o.version) for o in onx.opset_import))
    del onx.opset_import[:]
    onx.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in opsets)
    onx.doc_string = "voice-emotion-monitor window classifier"
    del onx.metadata_props[:]
    for k, v in (metadata or {}).items():
        onx.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v if isinstance(v, str) else json.dumps(v)))
    onnx.checker.check_model(onx)
    return onx


def _rename_output(onx) -> None:
    """Keep only the probability output and call it "probs"."""
    import onnx

    g = onx.graph
    prob = [o for o in g.output if o.name != "label"]
    if len(prob) != 1:
        raise ValueError(f"unexpected outputs {[o.name for o in g.output]}")
    old = prob[0].name
    for node in g.node:
        node.output[:] = [OUTPUT_NAME if n == old else n for n in node.output]
        node.input[:] = [OUTPUT_NAME if n == old else n for n in node.input]
    prob[0].name = OUTPUT_NAME
    keep = [o for o in g.output if o.name == OUTPUT_NAME]
    del g.output[:]
    g.output.extend(keep)
    # The label branch is now dead; drop nodes whose outputs nobody uses (repeat until stable).
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    onnx.checker.check_model(onx)


def model_metadata(*, labels, window_ms: float, hop_ms: float, normalisation: dict, training: dict,
                   recipe: dict, config: FeatureConfig = FeatureConfig(), gate: str, card: dict,
                   calibration: dict | None = None, encoder: str | None = DEFAULT_ENCODER.name,
                   cnn: str | None = None) -> dict:
    """The metadata_props every shipped model carries (values JSON or plain strings).

    card: name, summary, licence, version, date (shown on the page and by `emotion-monitor models`);
    calibration: {"temperature": T, "uncertain_below": p} (see models.calibration); encoder: the speech encoder
    file (next to the model) whose states the model reads, or None for the spectral statistics alone; cnn: the
    log-mel CNN file (next to the model) whose probabilities are averaged with the model's, or None."""
    missing = {"name", "summary", "licence", "version", "date"} - set(card)
    if missing:
        raise ValueError(f"model card lacks {sorted(missing)}")
    return {"labels": json.dumps(list(labels)), "feature_config": json.dumps(config.asdict()),
            "window_ms": f"{window_ms:g}", "hop_ms": f"{hop_ms:g}", "pooling_version": POOLING_VERSION,
            "feature_dim": str(vector_dim(ENCODER_DIM if encoder else 0)), **({"encoder": encoder} if encoder else {}),
            **({"cnn": cnn} if cnn else {}),
            "normalisation": json.dumps(normalisation), "gate": gate, "training_data": json.dumps(training),
            "recipe": json.dumps(recipe), "opset": str(OPSET), "calibration": json.dumps(calibration or {}),
            **{k: str(v) for k, v in card.items()}}


def save_onnx(onx, path: Path) -> None:
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onx, str(path))
