"""models/: loaders, label mapping, pooling, ONNX export parity, the shipped models, ModelError."""
import dataclasses
import json
from pathlib import Path

from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from dsp.config import FeatureConfig
from dsp.pooling import FEATURE_DIM, FEATURE_NAMES, OnlineNorm, window_vector
from dsp.windows import clip_windows
from models.datasets import Utterance, detect_corpus, load_corpora, words_tell_emotion
from models.errors import ModelError
from models.labels import EMOTIONS, GENDERS, ravdess_emotion, tess_emotion
from models.onnx_model import OnnxClassifier, default_models

SR = 16000


def _tone(seconds=0.05, f0=220.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.1 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def _write(path: Path, y=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _tone() if y is None else y, SR)


@pytest.fixture
def fake_ravdess(tmp_path):
    root = tmp_path / "ravdess"
    _write(root / "Actor_01" / "03-01-02-01-01-01-01.flac")   # calm, normal, male
    _write(root / "Actor_01" / "03-01-08-02-02-02-01.wav")    # surprised, strong
    _write(root / "Actor_12" / "03-01-05-02-01-01-12.flac")   # angry, female
    _write(root / "Actor_12" / "02-01-05-02-01-01-12.flac")   # song/video modality: ignored
    (root / "Actor_12" / "notes.txt").write_text("x")
    return root


@pytest.fixture
def fake_tess(tmp_path):
    root = tmp_path / "tess"
    _write(root / "OAF_pleasant_surprised" / "OAF_back_ps.wav")
    _write(root / "YAF_fear" / "YAF_bath_fear.flac")
    _write(root / "YAF_neutral" / "YAF_youth_neutral.flac")
    return root


def test_label_sets():
    assert EMOTIONS == ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert GENDERS == ("female", "male")
    assert ravdess_emotion("02") == "neutral" and tess_emotion("ps") == "surprised" and tess_emotion("fear") == "fearful"
    with pytest.raises(ValueError, match="unknown RAVDESS emotion code '09'"):
        ravdess_emotion("09")
    with pytest.raises(ValueError, match="unknown TESS emotion 'bored'"):
        tess_emotion("bored")


def test_ravdess_loader(fake_ravdess):
    utts = load_corpora([fake_ravdess])
    assert detect_corpus(fake_ravdess) == "ravdess"
    by_name = {u.path.name: u for u in utts}
    assert set(by_name) == {"03-01-02-01-01-01-01.flac", "03-01-08-02-02-02-01.wav", "03-01-05-02-01-01-12.flac"}
    calm = by_name["03-01-02-01-01-01-01.flac"]
    assert calm == Utterance(path=calm.path, corpus="ravdess", speaker="ravdess_01", gender="male",
                             emotion="neutral", intensity="normal")
    assert by_name["03-01-08-02-02-02-01.wav"].emotion == "surprised"
    assert by_name["03-01-08-02-02-02-01.wav"].intensity == "strong"
    assert by_name["03-01-05-02-01-01-12.flac"].gender == "female"
    with pytest.raises(dataclasses.FrozenInstanceError):
        calm.emotion = "happy"


def test_tess_loader_and_parent_dir(fake_ravdess, fake_tess):
    tess = load_corpora([fake_tess])
    assert {(u.speaker, u.emotion, u.gender) for u in tess} == {
        ("tess_OAF", "surprised", "female"), ("tess_YAF", "fearful", "female"), ("tess_YAF", "neutral", "female")}
    both = load_corpora([fake_ravdess.parent])   # the parent holding ravdess/ and tess/
    assert sorted(u.corpus for u in both) == ["ravdess"] * 3 + ["tess"] * 3


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus dir not found"):
        load_corpora([tmp_path / "nope"])
    (tmp_path / "empty" / "stuff").mkdir(parents=True)
    with pytest.raises(ValueError, match="no RAVDESS .* clips .* found under"):
        load_corpora([tmp_path / "empty"])


@pytest.mark.corpus
def test_real_corpus_counts(corpus_root):
    utts = load_corpora([corpus_root])
    n = {c: sum(u.corpus == c for u in utts) for c in ("ravdess", "tess", "ased", "baved")}
    assert n == {"ravdess": 1200, "tess": 2800, "ased": 2474, "baved": 1935}
    for corpus, (women, men) in {"ased": (25, 40), "baved": (16, 44)}.items():
        genders = {u.speaker: u.gender for u in utts if u.corpus == corpus}
        assert sorted(Counter(genders.values()).values()) == sorted([women, men])
    utts = [u for u in utts if u.corpus in ("ravdess", "tess")]
    assert sum(u.emotion == "neutral" and u.corpus == "ravdess" for u in utts) == 240   # neutral + calm
    assert {u.gender for u in utts if u.corpus == "tess"} == {"female"}
    assert sum(u.gender == "male" for u in utts) == 600


def test_ased_and_baved_loaders(tmp_path):
    """ASED: emotion from the letter (s and S both sad), gender by the speaker's majority code (one file
    carries the other); BAVED: gender only, from the name, folders are words; .ogg is read."""
    ased = tmp_path / "data" / "ased"
    for name in ("n1-06-01-02-07", "s4-07-01-02-07", "S4-01-02-01-07", "a5-06-01-01-03"):
        folder = {"n": "01Neutral", "s": "04Sad", "a": "05Angry"}[name[0].lower()]
        _write(ased / folder / f"{name}.ogg")
    baved = tmp_path / "data" / "baved"
    _write(baved / "3" / "12-f-21-3-2-401.ogg")
    _write(baved / "0" / "7-m-20-0-0-12.wav")
    (baved / "speakers_info.json").write_text("{}")
    utts = load_corpora([tmp_path / "data"])
    by = {u.path.stem: u for u in utts}
    assert {u.corpus for u in utts} == {"ased", "baved"}
    assert by["S4-01-02-01-07"].emotion == "sad" and by["S4-01-02-01-07"].gender == "male"   # majority 02
    assert by["a5-06-01-01-03"].gender == "female" and by["a5-06-01-01-03"].speaker == "ased_03"
    assert by["n1-06-01-02-07"].sentence == "06"
    assert [words_tell_emotion(by[k]) for k in ("S4-01-02-01-07", "n1-06-01-02-07", "12-f-21-3-2-401")] == [
        True, False, False]   # ASED's sentences 01-05 were written for their emotion; BAVED has none
    assert by["12-f-21-3-2-401"].gender == "female" and by["12-f-21-3-2-401"].emotion is None
    assert by["7-m-20-0-0-12"].speaker == "baved_07" and by["7-m-20-0-0-12"].gender == "male"
    assert len(load_corpora([ased])) == 4 and len(load_corpora([baved])) == 2   # a corpus root directly


def _speechy(seconds=2.5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    f0 = 150 + 30 * np.sin(2 * np.pi * 3 * t)
    y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 10))
    env = (np.sin(2 * np.pi * 2.5 * t) > -0.3).astype(float)
    return (0.2 * y * env + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def test_window_vector_shape_finite_deterministic():
    wins = clip_windows(_speechy(), window_ms=2000, hop_ms=100)
    assert len(wins) > 5
    vs = np.stack([window_vector(w) for w in wins])
    assert vs.shape == (len(wins), FEATURE_DIM) and vs.dtype == np.float32
    assert len(FEATURE_NAMES) == FEATURE_DIM
    assert np.all(np.isfinite(vs))
    again = np.stack([window_vector(w) for w in clip_windows(_speechy(), window_ms=2000, hop_ms=100)])
    np.testing.assert_array_equal(vs, again)
    # gain invariance: the level is dropped on purpose
    louder = np.stack([window_vector(w) for w in clip_windows(_speechy() * 3, window_ms=2000, hop_ms=100)])
    np.testing.assert_allclose(louder[:, :64], vs[:, :64], atol=1e-3)
    # silence (all frames at the floor) stays finite
    silent = clip_windows(np.zeros(SR, np.float32), window_ms=1000, hop_ms=100)
    assert np.all(np.isfinite(window_vector(silent[-1])))


def test_online_norm_running_mean():
    prior = np.zeros(3)
    norm = OnlineNorm(prior, prior_count=1.0)
    x = np.array([2.0, 4.0, 6.0])
    norm.update(x)
    np.testing.assert_allclose(norm.transform(x), x - x / 2)       # (x + 1*0) / 2
    norm.update(x)
    np.testing.assert_allclose(norm.transform(x), x - 2 * x / 3)
    norm.reset()
    np.testing.assert_allclose(norm.transform(x), x)
    with pytest.raises(ValueError, match="expected vectors of dim 3"):
        norm.update(np.zeros(4))


def test_online_norm_mean_and_variance_is_what_training_replays():
    """OnlineNorm with prior_std, window by window, equals models.recipe.online_normalise on the same session
    (one speaker, clips in the order it draws); a session whose features spread twice as wide as training is
    brought back toward the training spread."""
    from models.recipe import online_normalise

    rng = np.random.default_rng(1)
    mu, sd = rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)
    x = mu + 2.0 * sd * rng.standard_normal((200, 4)) + 1.0
    clip = np.repeat(np.arange(20), 10)
    want = online_normalise(x, clip, np.zeros(20, np.int64), mu, prior_count=5.0, rng=np.random.default_rng(3),
                            prior_std=sd)
    order = np.random.default_rng(3).permutation(20)
    norm, got = OnlineNorm(mu, prior_count=5.0, prior_std=sd), np.empty_like(want)
    for c in order:
        for i in np.flatnonzero(clip == c):
            norm.update(x[i])
            got[i] = norm.transform(x[i])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    late = got[clip == order[-1]]
    assert np.all(np.abs(late.std(axis=0) / sd - 1.0) < 0.6)  # the raw session spreads 2x (and is shifted by 1)
    with pytest.raises(ValueError, match="prior_std"):
        OnlineNorm(mu, prior_std=np.zeros(4))


def _tiny_model(n_classes=3, seed=0):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, FEATURE_DIM)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y[:, None].ravel() % n_classes)
    return model, x


def _export(tmp_path, name, *, config=FeatureConfig(), labels=("a", "b", "c")):
    from models.export import model_metadata, save_onnx, to_onnx

    model, x = _tiny_model(len(labels))
    meta = model_metadata(labels=labels, window_ms=2000, hop_ms=100, normalisation={"mode": "none"},
                          training={"clips": 0}, recipe={}, config=config, gate="test", encoder=None,
                          card=dict(name="tiny", summary="test", licence="MIT", version="0", date="2026-11-29"))
    path = tmp_path / name
    save_onnx(to_onnx(model, labels=labels, n_features=FEATURE_DIM, metadata=meta), path)
    return path, model, x


def test_onnx_parity(tmp_path):
    path, model, x = _export(tmp_path, "tiny.onnx")
    clf = OnnxClassifier(path, expected_config=FeatureConfig())
    assert clf.labels == ("a", "b", "c")
    got = clf.predict_proba(x)
    assert got.shape == (300, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, model.predict_proba(x), atol=1e-4)
    np.testing.assert_allclose(clf.predict_proba(x[0]), got[:1], atol=1e-6)   # (D,) input
    with pytest.raises(ValueError, match=f"features must be \\(n, {FEATURE_DIM}\\)"):
        clf.predict_proba(np.zeros((2, 5)))


def test_model_errors(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        OnnxClassifier(tmp_path / "missing.onnx")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07not an onnx model at all" * 10)
    with pytest.raises(ModelError, match="cannot read ONNX model"):
        OnnxClassifier(bad)
    path, _, _ = _export(tmp_path, "n40.onnx", config=FeatureConfig(n_mels=40))
    with pytest.raises(ModelError, match="n_mels=40 \\(expected 64\\)"):
        OnnxClassifier(path, expected_config=FeatureConfig())
    err = None
    try:
        OnnxClassifier(path, expected_config=FeatureConfig())
    except ModelError as exc:
        err = str(exc)
    assert "\n" not in err


@pytest.mark.parametrize("task,labels", [("emotion", EMOTIONS), ("emotion-en", EMOTIONS), ("gender", GENDERS)])
def test_shipped_models(task, labels):
    path = default_models()[task]
    assert path.name == f"{task}.onnx"
    clf = OnnxClassifier(path, expected_config=FeatureConfig())
    assert clf.labels == labels
    assert FeatureConfig.fromdict(json.loads(clf.metadata["feature_config"])) == FeatureConfig()
    assert json.loads(clf.metadata["training_data"])["held_out_speakers"] == ["ravdess_19", "ravdess_20"]
    # The training path's windows (encoder states included); each model reads its leading columns.
    from models.featurize import speech_windows

    wins = speech_windows(_speechy(), window_ms=clf.window_ms, hop_ms=clf.hop_ms)
    assert wins
    x = np.stack([window_vector(w) for w in wins])[:, : clf.feature_dim]
    norm = clf.online_norm()
    # The emotion models normalise each session's mean and spread; gender never (a voice's level is its cue).
    assert (norm is not None and norm.prior_std is not None) if task != "gender" else norm is None
    if norm is not None:
        norm.update(x)
        x = norm.transform(x)
    p = clf.predict_proba(x)
    assert p.shape == (len(wins), len(labels))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)


def test_emotion_model_per_language_trained_on_that_language_only():
    """--language picks the emotion model; the English one never heard the Amharic corpus, the default did."""
    from models.labels import LANGUAGES, emotion_model_name

    assert LANGUAGES == ("any", "en")
    corpora = {}
    for language in LANGUAGES:
        meta = OnnxClassifier(default_models()[emotion_model_name(language)]).metadata
        training = json.loads(meta["training_data"])
        assert training["language"] == language
        corpora[language] = set(training["by_corpus"])
    assert corpora["en"] == {"ravdess", "tess"}
    assert corpora["any"] == {"ravdess", "tess", "ased"}
    with pytest.raises(ValueError, match="no emotion model for language 'xx'"):
        emotion_model_name("xx")


def test_per_language_cross_validation_trains_and_tests_on_its_language():
    """evaluate's run for a per-language model: its folds test only that language's clips, and its training
    never sees another language (here the Amharic clips carry the opposite label signal: trained on them too,
    the English clips would be scored far worse)."""
    from models.evaluate import CvRun, cross_validate_many, in_language, speaker_folds
    from models.featurize import Augment, FeatureSet
    from models.recipe import Recipe

    utts = [Utterance(Path(f"r{a}_{k}"), "ravdess", f"ravdess_{a:02d}", "male", ("happy", "sad")[k % 2])
            for a in range(1, 11) for k in range(8)]
    utts += [Utterance(Path(f"a{s}_{k}"), "ased", f"ased_{s:02d}", "male", ("happy", "sad")[k % 2])
             for s in range(1, 31) for k in range(8)]
    assert in_language(utts, "en").sum() == 80 and in_language(utts, "any").all()
    rng = np.random.default_rng(0)
    clip = np.repeat(np.arange(len(utts)), 4)
    sad = np.array([u.emotion == "sad" for u in utts])[clip]
    amharic = np.array([u.corpus == "ased" for u in utts])[clip]
    x = np.zeros((len(clip), Recipe().dims_for("emotion")), np.float32)
    x[:, :3] = rng.standard_normal((len(clip), 3))
    x[:, 0] += np.where(sad != amharic, 1.5, -1.5)      # the cue flips sign in the Amharic clips
    fs = FeatureSet(x=x, clip=clip, aug=np.zeros(len(clip), np.int64), utts=tuple(utts), augs=(Augment(),))
    recipe = Recipe(classifier="logreg", train_stride=1, norm="none", cnn=None)
    folds = speaker_folds(utts)
    en, mixed = cross_validate_many([CvRun(fs, "emotion", folds, language="en"), CvRun(fs, "emotion", folds)],
                                    recipe, seed=0, n_jobs=1)
    assert {utts[i].corpus for i in en["clip"]} == {"ravdess"} and len(en["clip"]) == 80
    english = np.array([utts[i].corpus == "ravdess" for i in mixed["clip"]])

    def accuracy(cv, keep):
        return float(np.mean(cv["clip_probs"][keep].argmax(1) == cv["clip_true"][keep]))

    assert accuracy(en, np.ones(80, bool)) > 0.9 > 0.5 > accuracy(mixed, english)


def test_training_normalisation_equals_live_online_norm():
    """models.recipe.online_normalise (training) == OnlineNorm update-then-transform (live), per session."""
    from models.recipe import online_normalise

    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 6)).astype(np.float32) + 2.0
    clip = np.repeat(np.arange(8), 5)            # 8 clips of 5 windows
    speaker_of_clip = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    prior = rng.standard_normal(6)
    got = online_normalise(x, clip, speaker_of_clip, prior, prior_count=3.0, rng=np.random.default_rng(0))
    # replay: same random clip order per speaker, windows in time order
    order_rng = np.random.default_rng(0)
    for s in (0, 1):
        clips = np.unique(clip[speaker_of_clip[clip] == s])
        norm = OnlineNorm(prior, prior_count=3.0)
        for c in order_rng.permutation(clips):
            for i in np.flatnonzero(clip == c):
                norm.update(x[i])
                np.testing.assert_allclose(got[i], norm.transform(x[i]), atol=1e-5)


def test_voice_loader(tmp_path):
    from models.voices import load_voices

    _write(tmp_path / "pkg" / "usr" / "share" / "it_IT_m_Carlo" / "digits" / "1.wav", _tone(1.0))
    _write(tmp_path / "pkg" / "usr" / "share" / "en_US_f_Allison" / "hello.wav", _tone(1.0))
    _write(tmp_path / "pkg" / "usr" / "share" / "es_MX_f_Allison" / "hola.wav", _tone(1.0))
    _write(tmp_path / "pkg" / "usr" / "share" / "es_MX_f_Allison" / "a.wav", _tone(0.2))   # too short
    utts = load_voices([tmp_path])
    assert sorted((u.speaker, u.gender, u.emotion) for u in utts) == [
        ("asterisk_Allison", "female", None), ("asterisk_Allison", "female", None), ("asterisk_Carlo", "male", None)]
    with pytest.raises(ValueError, match="no <lang>_<CC>_<f|m>_<Name> voice folders"):
        load_voices([tmp_path / "pkg" / "usr" / "share" / "it_IT_m_Carlo" / "digits"])


def test_speaker_folds_are_speaker_disjoint():
    from models.evaluate import speaker_folds

    utts = [Utterance(Path(f"{a}_{k}"), "ravdess", f"ravdess_{a:02d}", "male", "happy") for a in range(1, 21)
            for k in range(3)] + [Utterance(Path(f"t{s}{k}"), "tess", f"tess_{s}", "female", "sad")
                                   for s in ("OAF", "YAF") for k in range(3)]
    utts += [Utterance(Path(f"a{s}{k}"), "ased", f"ased_{s:02d}", "male", "sad") for s in range(1, 12)
             for k in range(2)]
    folds = speaker_folds(utts)
    assert len(folds) == 5
    assert folds[0].name == "fold 1: ased 3, ravdess 4, tess 1"
    seen = [i for f in folds for i in f.test]
    assert sorted(seen) == list(range(len(utts)))    # every clip tested exactly once
    for k, f in enumerate(folds):
        spk = {utts[i].speaker for i in f.test}
        assert {s for s in spk if s.startswith("ravdess")} == {f"ravdess_{a:02d}" for a in range(4 * k + 1, 4 * k + 5)}
        for other in folds[k + 1:]:
            assert not spk & {utts[i].speaker for i in other.test}   # no speaker in two folds


def test_summarise_scores_only_the_chosen_clips():
    """evaluate's row of a corpus's clips whose words every emotion shares: the same predictions, fewer clips."""
    from models.evaluate import summarise

    utts = [Utterance(Path(f"c{k}"), "ased", "ased_01", "male", emo, sentence=sent)
            for k, (emo, sent) in enumerate([("happy", "01"), ("sad", "02"), ("happy", "06"), ("sad", "07")])]
    true = np.array([EMOTIONS.index(u.emotion) for u in utts])
    probs = np.full((4, len(EMOTIONS)), 0.01)
    probs[[0, 1], true[[0, 1]]] = 1.0      # right on the clips whose words name their emotion
    probs[[2, 3], true[[1, 0]]] = 1.0      # wrong on the others
    ids = np.arange(4)
    cv = {"clip": ids, "clip_true": true, "clip_probs": probs, "win_clip": ids, "win_true": true, "win_probs": probs}
    tied = np.array([words_tell_emotion(u) for u in utts])
    assert summarise(cv, utts, "emotion", corpus="ased")["clip"]["ua"] == 0.5
    assert summarise(cv, utts, "emotion", corpus="ased", clips=tied)["clip"]["ua"] == 1.0
    shared = summarise(cv, utts, "emotion", corpus="ased", clips=~tied)
    assert shared["clip"]["ua"] == 0.0 and shared["window"]["ua"] == 0.0
    assert summarise(cv, utts, "emotion", corpus="ravdess", clips=~tied) == {}


def test_arctic_speaker_to_gender_on_a_synthetic_sdist(tmp_path):
    import io
    import tarfile

    from models.voices import arctic_speaker, extract_arctic, load_voices

    assert arctic_speaker("pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav") == "awb"
    assert arctic_speaker("x-0.1/data/cmu_us_bdl_arctic/wav/arctic_a0001.wav") == "bdl"
    assert arctic_speaker("x-0.1/data/slt_arctic/arctic_a0002.wav") == "slt"
    assert arctic_speaker("x-0.1/tests/data/test.wav") is None
    src = tmp_path / "src"
    _write(src / "one.wav", _tone(1.0))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in ("x-0.1/data/cmu_us_bdl_arctic/wav/arctic_a0001.wav", "x-0.1/data/cmu_us_clb_arctic/a.wav",
                       "x-0.1/tests/data/unknown.wav"):
            tar.add(src / "one.wav", arcname=member)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        written = extract_arctic(tar, tmp_path / "voices" / "cmu_arctic")
    assert sorted(p.parent.name for p in written) == ["en_US_f_clb", "en_US_m_bdl"]
    utts = load_voices([tmp_path / "voices"])
    assert sorted((u.corpus, u.speaker, u.gender) for u in utts) == [
        ("arctic", "arctic_bdl", "male"), ("arctic", "arctic_clb", "female")]


def test_packed_voices_decode_gsm_and_headerless_raw_into_voice_folders(tmp_path):
    import subprocess

    from models.voices import PackedVoice, extract_packed_voices, load_voices, voice_corpus

    tree = tmp_path / "tree"                 # what dpkg-deb -x leaves: prompts in a language folder, raw codec2 clips
    wav = tmp_path / "tone8k.wav"
    t = np.arange(int(8000 * 1.2)) / 8000
    sf.write(str(wav), (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 8000)
    gsm = tree / "usr/share/asterisk/sounds/es/digits/1.gsm"
    gsm.parent.mkdir(parents=True)
    subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-t", "gsm", str(gsm)], check=True)
    (tree / "usr/share/asterisk/sounds/digits/es").mkdir(parents=True)   # duplicate layout: must be ignored
    (tree / "usr/share/asterisk/sounds/digits/es/1.gsm").write_bytes(gsm.read_bytes())
    (tree / "usr/share/asterisk/sounds/es/beep.gsm").write_bytes(gsm.read_bytes())
    raw = tree / "usr/share/codec2/raw/morig.raw"
    raw.parent.mkdir(parents=True)
    (np.arange(12000) % 200 * 50 - 5000).astype("<i2").tofile(raw)       # 1.5 s at 8 kHz
    (tree / "usr/share/codec2/raw/f2400.raw").write_bytes(raw.read_bytes())  # undocumented: not picked
    voices = [PackedVoice("p", "asterisk-prompt-es-co", "es_CO_f_July", r"^usr/share/asterisk/sounds/es/.+\.gsm$",
                          "gsm"),
              PackedVoice("c", "codec2", "en_XX_m_morig", r"^usr/share/codec2/raw/morig\.raw$", "s16le_8k")]
    out = tmp_path / "voices"
    written = extract_packed_voices(tree, out, voices)
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "asterisk-prompt-es-co/es_CO_f_July/beep.wav", "asterisk-prompt-es-co/es_CO_f_July/digits/1.wav",
        "codec2/en_XX_m_morig/morig.wav"]
    y, sr = sf.read(str(out / "codec2/en_XX_m_morig/morig.wav"), dtype="int16")
    assert sr == 8000 and len(y) == 12000 and y[1] == -4950
    info = sf.info(str(out / "asterisk-prompt-es-co/es_CO_f_July/digits/1.wav"))
    assert info.samplerate == 8000 and abs(info.duration - 1.2) < 0.05
    _write(out / "asterisk-core-sounds-en-wav" / "en_US_f_Allison" / "silence" / "1.wav", _tone(1.0))  # not speech
    utts = load_voices([out])
    assert sorted((u.corpus, u.speaker, u.gender, u.intensity) for u in utts) == [   # beep and silence dropped
        ("asterisk", "asterisk_July", "female", "es_CO"), ("codec2", "codec2_morig", "male", "en_XX")]
    assert voice_corpus(out / "codec2" / "en_XX_m_morig", out / "codec2") == "codec2"
    with pytest.raises(ValueError, match="bad PackedVoice"):
        extract_packed_voices(tree, out, [PackedVoice("c", "codec2", "morig", r"morig\.raw$", "s16le_8k")])


def test_default_packed_voices_are_well_formed():
    from models.voices import PACKAGES, PACKED_VOICES, _VOICE_DIR, _fixed_prefix

    for v in PACKED_VOICES:
        assert _VOICE_DIR.match(v.folder) and v.package in PACKAGES and _fixed_prefix(v.members).endswith("/")
    assert {v.folder[3:5] for v in PACKED_VOICES if v.source == "codec2"} == {"XX", "AU"}
    assert sum(v.folder.split("_")[2] == "m" for v in PACKED_VOICES) == 3


def test_band_augmentations_remove_what_a_telephone_line_drops():
    from models.featurize import Augment, augment_audio

    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(SR * 2)).astype(np.float32)

    def band_db(x, lo, hi):
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / SR)
        return 10 * np.log10(spec[(f >= lo) & (f < hi)].mean())

    phone = augment_audio(y, Augment(band_hz=3400.0, low_hz=300.0), sr=SR, rng=rng)
    assert phone.shape == y.shape and phone.dtype == np.float32
    mid = band_db(phone, 800, 2500)
    assert mid == pytest.approx(band_db(y, 800, 2500), abs=1.5)   # the voice band passes
    assert band_db(phone, 4000, 8000) < mid - 40                    # above the line's band: gone
    assert band_db(phone, 20, 120) < mid - 20                       # below 300 Hz: strongly cut
    assert Augment(low_hz=300.0).is_identity is False and Augment().is_identity
