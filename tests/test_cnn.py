"""The emotion models' log-mel CNN (models.cnn): its ONNX graph against the numpy reference, torch training and
export, its input and session normalisation as live and training compute them, and its place in the pipeline
and in cross-validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.cnn import (CHANNELS, CNN_BANDS, CNN_FRAMES, CnnModel, CnnRecipe, band_prior, build_onnx, cnn_input,
                        fit_cnn, fuse, reference_forward, weights_of)
from models.featurize import load_audio
from tests._corpus import FIXTURES

CLIP = FIXTURES / "ravdess/Actor_01/03-01-01-01-01-01-01.flac"


def _random_weights(rng, n_classes=7) -> dict:
    w = {"in.mean": rng.normal(-40, 5, CNN_BANDS).astype(np.float32),
         "in.std": rng.uniform(4, 9, CNN_BANDS).astype(np.float32)}
    cin = 1
    for i, c in enumerate(CHANNELS):
        w[f"conv{i}.w"] = (rng.standard_normal((c, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
        w[f"conv{i}.b"] = rng.normal(0, 0.1, c).astype(np.float32)
        cin = c
    w["fc.w"] = (rng.standard_normal((n_classes, 2 * CHANNELS[-1] * CNN_BANDS // 8)) * 0.05).astype(np.float32)
    w["fc.b"] = rng.normal(0, 0.1, n_classes).astype(np.float32)
    return w


def _model(weights, n_classes=7) -> CnnModel:
    norm = {"prior_mean": weights["in.mean"].tolist(), "prior_std": weights["in.std"].tolist(), "prior_count": 20}
    return CnnModel(build_onnx(weights, metadata={"labels": [str(k) for k in range(n_classes)], "normalisation": norm}))


def test_onnx_graph_equals_numpy_reference():
    rng = np.random.default_rng(0)
    w = _random_weights(rng)
    spec = rng.normal(-40, 8, (5, CNN_BANDS, CNN_FRAMES)).astype(np.float32)
    model = _model(w)
    got, want = model.predict_proba(spec), reference_forward(w, spec)
    assert np.abs(got - want).max() < 1e-5
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5) and got.std() > 1e-3   # not a constant output
    # and the weights come back out of the graph unchanged (the shipped file's parity test reads them so)
    back = weights_of(build_onnx(w))
    assert sorted(back) == sorted(w) and all(np.array_equal(back[k], w[k]) for k in w)


def test_cnn_input_halves_the_frame_rate_and_pads_short_windows_with_the_band_floor():
    rng = np.random.default_rng(1)
    full = rng.normal(size=(CNN_BANDS, 2 * CNN_FRAMES + 7)).astype(np.float32)   # longer: the newest frames count
    x = cnn_input(full)
    assert x.shape == (CNN_BANDS, CNN_FRAMES)
    assert np.allclose(x, 0.5 * (full[:, 7::2] + full[:, 8::2]))
    short = full[:, :40]
    y = cnn_input(short)
    assert np.allclose(y[:, -20:], 0.5 * (short[:, 0::2] + short[:, 1::2]))
    assert np.allclose(y[:, 0], short.min(axis=1))


def test_spectrogram_normalisation_in_training_is_what_live_does():
    """models.recipe.online_normalise on (N, B, T) windows == OnlineNorm updated with each window's frames, then
    transforming them, clip by clip in the session's order."""
    from models.recipe import online_normalise

    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 4, 5))
    clip = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    mean, std = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    out = online_normalise(x, clip, np.zeros(3, np.int64), mean, prior_count=3.0, rng=np.random.default_rng(5),
                           prior_std=std)
    w = _random_weights(rng)
    w["in.mean"], w["in.std"] = mean.astype(np.float32), std.astype(np.float32)
    from dsp.pooling import OnlineNorm

    live = OnlineNorm(mean, prior_count=3.0 * x.shape[2], prior_std=std)
    for c in np.random.default_rng(5).permutation(np.arange(3)):
        for i in np.flatnonzero(clip == c):
            live.update(x[i].T)
            assert np.abs(live.transform(x[i].T).T - out[i]).max() < 1e-5


def _toy(rng, n):
    """Spectrograms whose class is the band third that carries a 12 dB hump: learnable in a few epochs."""
    y = rng.integers(0, 3, n)
    spec = rng.normal(-40, 3, (n, CNN_BANDS, CNN_FRAMES)).astype(np.float32)
    for k in range(3):
        spec[y == k, k * 20:k * 20 + 14] += 12.0
    return spec, y


def test_folded_batch_norm_gives_torchs_output():
    """The weights dict of a torch network in eval mode (batch norm folded into the convolutions) reproduces
    torch's probabilities in the numpy reference and in the ONNX graph."""
    import torch

    from models.cnn import folded_weights, torch_net

    torch.manual_seed(0)
    net = torch_net(7)
    for m in net.body:   # batch norm statistics away from their identity start, or folding them proves nothing
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    rng = np.random.default_rng(7)
    spec = rng.normal(-40, 8, (4, CNN_BANDS, CNN_FRAMES)).astype(np.float32)
    mean, std = band_prior(spec)
    with torch.no_grad():
        want = torch.softmax(net(torch.from_numpy(((spec - mean[None, :, None]) / std[None, :, None])
                                                  .astype(np.float32))), 1).numpy()
    w = folded_weights(net, mean, std)
    assert np.abs(reference_forward(w, spec) - want).max() < 1e-5
    assert np.abs(_model(w).predict_proba(spec) - want).max() < 1e-5


def test_torch_training_learns_and_exports_what_it_learnt():
    rng = np.random.default_rng(3)
    spec, y = _toy(rng, 192)
    mean, std = band_prior(spec)
    losses = []
    recipe = CnnRecipe(epochs=4, batch=32)
    w = fit_cnn(spec, y, n_classes=3, prior_mean=mean, prior_std=std, recipe=recipe, seed=0,
                progress=lambda epoch, loss: losses.append(loss))
    assert len(losses) == 4 and losses[-1] < losses[0]
    test, yt = _toy(rng, 60)
    p_ref = reference_forward(w, test)
    assert np.mean(p_ref.argmax(1) == yt) > 0.9
    assert np.abs(_model(w, 3).predict_proba(test) - p_ref).max() < 1e-5   # batch norm folded correctly
    again = fit_cnn(spec, y, n_classes=3, prior_mean=mean, prior_std=std, recipe=recipe, seed=0)
    assert all(np.array_equal(again[k], w[k]) for k in w)   # `train` reproduces its files


def test_live_pipeline_feeds_the_cnn_what_training_featurised():
    """The spectrograms the pipeline gives an emotion model with a CNN are the training windows' (featurize's
    cnn_input of speech_windows), normalised as models.recipe.online_normalise replays one session."""
    from dsp.gate import SPEECH_GATE
    from dsp import FeatureConfig
    from dsp.pooling import window_vector
    from models.featurize import speech_windows
    from models.recipe import online_normalise
    from streamer.pipeline import Pipeline, PipelineConfig

    rng = np.random.default_rng(4)
    w = _random_weights(rng)
    cnn = _model(w)

    class Recorder:
        labels, calibration = tuple("0123456"), {}

        def __init__(self):
            self.specs, self.fused, self.mlp = [], [], np.full((1, 7), 1 / 7, np.float32)

        def predict_proba(self, x, spec=None):
            self.specs.append(spec[0])
            self.fused.append(fuse(self.mlp, cnn.predict_proba(spec))[0])
            return fuse(self.mlp, cnn.predict_proba(spec))

        def online_norm(self):
            return None

        def spec_norm(self):
            return cnn.online_norm()

    class Flat:
        labels, calibration = ("female", "male"), {}

        def predict_proba(self, x):
            return np.array([[0.5, 0.5]], np.float32)

    y = load_audio(CLIP, sr=16000)
    rec = Recorder()
    events = Pipeline(rec, Flat(), config=PipelineConfig(max_windows_per_push=0)).push(y, wall_end=0.0)
    live = np.stack(rec.specs)
    wins = speech_windows(y, config=FeatureConfig(encoder_mels=0), window_ms=1500, hop_ms=100)
    keep = SPEECH_GATE.voiced(np.stack([window_vector(win) for win in wins]))
    train = np.stack([cnn_input(win.log_mel) for win, k in zip(wins, keep) if k])
    norm = online_normalise(train, np.zeros(len(train), np.int64), np.zeros(1, np.int64), w["in.mean"],
                            prior_count=20.0, rng=np.random.default_rng(0), prior_std=w["in.std"])
    # Live lacks the first windows, while the VAD settles, so its normaliser has seen fewer: replay from there.
    first = len(train) - len(live)
    assert 0 < first <= 3 and len(live) > 10
    replay = online_normalise(train[first:], np.zeros(len(live), np.int64), np.zeros(1, np.int64), w["in.mean"],
                              prior_count=20.0, rng=np.random.default_rng(0), prior_std=w["in.std"])
    assert np.abs(live - replay).max() < 1e-3
    assert np.abs(live - norm[first:]).max() > 1e-3     # (the normaliser's history does matter)
    raw = [e.emotion_probs_raw for e in events if e.speech]
    assert len(raw) == len(live)
    assert np.allclose([list(r.values()) for r in raw], np.stack(rec.fused), atol=1e-4)


def test_cross_validation_trains_the_cnn_and_averages_it_in():
    """A cue only the spectrograms carry: the MLP alone is at chance, the fused model is not."""
    from models.datasets import Utterance
    from models.evaluate import CvRun, cross_validate_many, speaker_folds
    from models.featurize import Augment, FeatureSet
    from models.recipe import Recipe

    utts = [Utterance(Path(f"r{a}_{k}"), "ravdess", f"ravdess_{a:02d}", "male", ("neutral", "happy", "sad")[k % 3])
            for a in range(1, 11) for k in range(6)]
    rng = np.random.default_rng(5)
    clip = np.repeat(np.arange(len(utts)), 5)
    labels = np.array([("neutral", "happy", "sad").index(u.emotion) for u in utts])[clip]
    spec = np.zeros((len(clip), CNN_BANDS, CNN_FRAMES), np.float32)
    for k in range(3):
        spec[labels == k] = rng.normal(-40, 3, ((labels == k).sum(), CNN_BANDS, CNN_FRAMES))
        spec[labels == k, k * 20:k * 20 + 14] += 12.0
    x = rng.standard_normal((len(clip), Recipe().dims_for("emotion"))).astype(np.float32)
    fs = FeatureSet(x=x, clip=clip, aug=np.zeros(len(clip), np.int64), utts=tuple(utts), augs=(Augment(),),
                    spec=spec.astype(np.float16))
    folds = speaker_folds(utts)
    base = Recipe(classifier="logreg", train_stride=1, norm="none", cnn=None)
    with_cnn = Recipe(classifier="logreg", train_stride=1, norm="none", cnn=CnnRecipe(epochs=4, batch=32))
    alone, fused = (cross_validate_many([CvRun(fs, "emotion", folds)], r, seed=0, n_jobs=1)[0]
                    for r in (base, with_cnn))

    def accuracy(cv):
        return float(np.mean(cv["clip_probs"].argmax(1) == cv["clip_true"]))

    assert accuracy(fused) > 0.9 and accuracy(alone) < 0.6


def test_shipped_emotion_models_carry_their_cnn_and_it_is_the_graph_of_its_weights():
    import onnx

    from models.labels import EMOTION_MODELS
    from models.onnx_model import OnnxClassifier, default_models

    spec = cnn_input(_clip_log_mel())[None]
    for name in EMOTION_MODELS.values():
        clf = OnnxClassifier(default_models()[name])
        assert clf.cnn is not None and clf.cnn.labels == clf.labels
        w = weights_of(onnx.load(str(clf.cnn.path)))
        z = clf.cnn.online_norm()
        z.update(spec[0].T)
        s = z.transform(spec[0].T).T[None]
        assert np.abs(clf.cnn.predict_proba(s) - reference_forward(w, s)).max() < 1e-5
        x = np.zeros((1, clf.feature_dim), np.float32)
        assert np.allclose(clf.predict_proba(x, spec=s), fuse(clf.predict_proba(x), clf.cnn.predict_proba(s)))


def _clip_log_mel() -> np.ndarray:
    from dsp import FeatureConfig, StreamingFeatures

    frames = StreamingFeatures(FeatureConfig(encoder_mels=0)).push(load_audio(CLIP, sr=16000))
    return frames.log_mel[:, -2 * CNN_FRAMES:]


def test_a_cnn_file_of_another_shape_is_a_clear_error(tmp_path):
    from models.errors import ModelError

    rng = np.random.default_rng(6)
    w = _random_weights(rng)
    norm = {"prior_mean": w["in.mean"].tolist(), "prior_std": w["in.std"].tolist(), "prior_count": 20}
    path = tmp_path / "bad-cnn.onnx"
    path.write_bytes(build_onnx(w, metadata={"labels": list("01234"), "normalisation": norm}).SerializeToString())
    with pytest.raises(ModelError, match="7 outputs|5 outputs"):   # 7 outputs, 5 labels
        CnnModel(path)
    w["in.mean"], w["in.std"] = w["in.mean"][:40], w["in.std"][:40]   # 40 bands: onnxruntime refuses the graph
    path.write_bytes(build_onnx(w, metadata={"labels": list("0123456"), "normalisation": norm}).SerializeToString())
    with pytest.raises(ModelError, match="cannot load CNN model"):
        CnnModel(path)
    path.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load CNN model"):
        CnnModel(path)
    with pytest.raises(ModelError, match="not found"):
        CnnModel(tmp_path / "missing-cnn.onnx")
