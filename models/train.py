"""Command line: `train` (fit and export the shipped ONNX models), `evaluate` (speaker-independent report),
`fetch-voices` (extra gender data). Each subcommand's run(args) returns an exit code.

    python -m models.train train --data ../shared/data --out models --seed 0
    python -m models.train evaluate --data ../shared/data --out /tmp/report
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np

from .datasets import load_corpora
from .errors import ModelError

__all__ = ["register", "run_train", "run_evaluate", "main", "output_dir", "SHIPPED_HOLDOUT"]

# Held out of the shipped models: the lead's reaction-time benchmark plays these actors' clips.
SHIPPED_HOLDOUT = ("ravdess_19", "ravdess_20")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", nargs="+", required=True, type=Path,
                   help="corpus roots (RAVDESS, TESS, or a parent holding ravdess/ and tess/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window-ms", type=float, default=None, help="analysis window (default: the recipe's)")
    p.add_argument("--hop-ms", type=float, default=None, help="window hop (default: the recipe's)")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default ~/.cache/...)")
    p.add_argument("--voices", nargs="*", type=Path, default=[],
                   help="extra gender-only voice dirs made by fetch-voices")
    p.add_argument("--no-cnn", action="store_true",
                   help="emotion models without the log-mel CNN beside the MLP (faster; the MLP alone)")


def register(subparsers) -> None:
    """Add the train / evaluate / fetch-voices subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("train", help="train the emotion and gender models and export ONNX")
    _common(p)
    p.add_argument("--out", type=Path, required=True, help="directory for emotion.onnx / gender.onnx")
    p.add_argument("--report", type=Path, default=None, help="evaluate's report.json, quoted in the model cards")
    p.add_argument("--holdout", nargs="*", default=list(SHIPPED_HOLDOUT), help="speakers kept out of training")
    p.set_defaults(run=run_train)
    p = subparsers.add_parser("evaluate", help="speaker-independent cross-validation report (JSON + HTML)")
    _common(p)
    p.add_argument("--out", type=Path, required=True, help="report directory")
    p.add_argument("--no-random", action="store_true", help="skip the random-split comparison")
    p.add_argument("--no-session", action="store_true",
                   help="skip session mode (each test speaker's clips as one stream through the real pipeline)")
    p.add_argument("--experiments", type=Path, default=None, help="JSON list of design experiments to include")
    p.set_defaults(run=run_evaluate)
    from .convert import register as register_convert
    from .voices import register as register_voices

    register_voices(subparsers)
    register_convert(subparsers)


def _recipe(args):
    from .recipe import Recipe

    r = Recipe()
    changes = {k: v for k, v in (("window_ms", args.window_ms), ("hop_ms", args.hop_ms)) if v is not None}
    window, hop = changes.get("window_ms", r.window_ms), changes.get("hop_ms", r.hop_ms)
    if not 10.0 <= hop <= window:
        raise ModelError(f"need 10 ms <= --hop-ms <= --window-ms (one 10 ms frame at least), got window {window:g} "
                         f"ms, hop {hop:g} ms")
    if getattr(args, "no_cnn", False):
        changes["cnn"] = None
    return dataclasses.replace(r, **changes)


def _load(args):
    from .voices import load_voices

    try:
        return load_corpora(args.data) + (load_voices(args.voices) if args.voices else [])
    except (FileNotFoundError, ValueError) as exc:   # a missing folder, or one without any clip the loaders know
        raise ModelError(str(exc)) from None


def _read_json(path: Path, what: str):
    """A JSON file the user named (--report, --experiments): unreadable or malformed is a one-line error."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise ModelError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelError(f"{what} {path} is not valid JSON ({exc})") from None


def output_dir(path: Path) -> Path:
    """Create the output folder now, before hours of work are spent on what could not be written."""
    if Path(path).exists() and not Path(path).is_dir():
        raise ModelError(f"cannot create the output folder {path}: a file of that name exists")
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the output folder {path}: {exc.strerror or exc}") from None
    return Path(path)


def _features(utts, recipe, args, task):
    from .featurize import featurize

    return featurize(utts, augs=recipe.augs_for(task), window_ms=recipe.window_ms, hop_ms=recipe.hop_ms, seed=args.seed,
                     cache_dir=args.cache_dir, spec=recipe.uses_cnn(task))


def _summary(utts) -> dict:
    spk = sorted({u.speaker for u in utts})
    return {"clips": len(utts), "speakers": len(spk), "by_corpus": dict(Counter(u.corpus for u in utts)),
            "by_gender": dict(Counter(u.gender for u in utts)), "speaker_ids": spk}


def run_train(args) -> int:
    from .cards import write_cards

    t0 = time.time()
    recipe = _recipe(args)
    # Featurise every clip, as evaluate does (same feature cache), then train on the rows of the speakers
    # not held out.
    utts = _load(args)
    held = np.array([u.speaker in set(args.holdout) for u in utts])
    report = _read_json(args.report, "report") if args.report else None
    _place_encoder(output_dir(args.out))
    summaries = {}
    for task in ("emotion", "gender"):
        t1 = time.time()
        fs = _features(utts, recipe, args, task)
        print(f"{task} features: {int((~held[fs.clip]).sum())} windows from {int((~held).sum())} clips "
              f"({time.time() - t1:.0f} s)")
        for name, language in _models_of(task, fs.utts):
            summaries[name] = _train_one(name, task, language, fs, held, recipe, args, report)
        del fs   # the next task's features are as large: free these first
    write_cards(args.out, report=report, training=summaries, holdout=list(args.holdout), recipe=recipe)
    print(f"done in {time.time() - t0:.0f} s")
    return 0


def _models_of(task: str, utts) -> list[tuple[str, str]]:
    """(model name, language) of the models train writes (and evaluate scores) for a task: one gender model,
    and an emotion model per entry of labels.EMOTION_MODELS whose language has a corpus among utts."""
    from .evaluate import in_language
    from .labels import EMOTION_MODELS

    if task == "gender":
        return [("gender", "any")]
    kept = []
    for language, name in EMOTION_MODELS.items():
        if in_language(utts, language).any():
            kept.append((name, language))
        else:
            print(f"{name}: skipped (no {language} corpus in --data)")
    return kept


def _train_one(name: str, task: str, language: str, fs, held: np.ndarray, recipe, args, report) -> dict:
    """Fit, export and check one model on the rows of fs its language keeps; -> its training summary."""
    from dsp.gate import SPEECH_GATE

    from .encoder import DEFAULT_ENCODER
    from .evaluate import TASK_LABELS, balance_weights, in_language, prepare_train, task_labels
    from .export import model_metadata, save_onnx, to_onnx
    from .featurize import GATE_VERSION
    from .recipe import fit_classifier

    t1 = time.time()
    keep = ~held & in_language(fs.utts, language)
    rows = np.flatnonzero(keep[fs.clip])
    y_clip = task_labels(fs.utts, task)
    x, y, prior = prepare_train(fs, rows, y_clip, recipe, seed=args.seed, norm=recipe.norm_for(task), task=task)
    missing = [lab for k, lab in enumerate(TASK_LABELS[task]) if not np.any(y == k)]
    if missing:   # a shipped model has an output per label: it cannot learn one it never heard
        raise ModelError(f"{name}: no speech windows labelled {', '.join(missing)} in the training data "
                         f"(--data); every {task} label needs some")
    sw = balance_weights(y) if task == "gender" else None
    model = fit_classifier(x, y, recipe, task=task, seed=args.seed, sample_weight=sw)
    used = [u for u, lab, k in zip(fs.utts, y_clip, keep) if lab >= 0 and k]
    cnn_name = _train_cnn(name, task, fs, rows, y_clip, recipe, args) if recipe.uses_cnn(task) else None
    norm = {"mode": recipe.norm_for(task)}
    if prior is not None:
        norm.update(prior_count=recipe.norm_prior_count, prior_mean=[round(float(v), 6) for v in prior.mean])
        if prior.std is not None:
            norm["prior_std"] = [float(f"{v:.7g}") for v in prior.std]
    meta = model_metadata(labels=TASK_LABELS[task], window_ms=recipe.window_ms, hop_ms=recipe.hop_ms,
                          normalisation=norm, recipe=_recipe_json(recipe), training=dict(
                              _summary(used), held_out_speakers=list(args.holdout), seed=args.seed,
                              language=language),
                          gate=f"{GATE_VERSION}: dsp.gate.SpeechGate, VAD speech in >= "
                               f"{SPEECH_GATE.min_fraction:g} of the window's frames and a pitch in >= "
                               f"{SPEECH_GATE.min_voiced_fraction:g} of its loud frames",
                          card=model_card(name, used, report, cnn=recipe.uses_cnn(task)),
                          calibration=_shipped_calibration(report, name),
                          encoder=DEFAULT_ENCODER.name if recipe.uses_encoder(task) else None, cnn=cnn_name)
    onx = to_onnx(model, labels=TASK_LABELS[task], n_features=recipe.dims_for(task), metadata=meta)
    path = args.out / f"{name}.onnx"
    save_onnx(onx, path)
    _check_parity(path, model, x[:256])
    print(f"{name}: {len(x)} windows, {path} ({path.stat().st_size / 1e3:.0f} kB, {time.time() - t1:.0f} s)")
    return _summary(used)


def _train_cnn(name: str, task: str, fs, rows: np.ndarray, y_clip: np.ndarray, recipe, args) -> str:
    """Fit the model's log-mel CNN (models.cnn) on both cores, write <name>-cnn.onnx and check it against the
    numpy reference; -> the file's name (the MLP's metadata names it)."""
    from rich.progress import Progress

    from .cnn import CnnModel, build_onnx, reference_forward
    from .evaluate import fit_cnn_model
    from .export import save_onnx

    t0 = time.time()
    with Progress() as bar:
        job = bar.add_task(f"{name} CNN epochs", total=recipe.cnn.epochs)

        def epoch_done(epoch: int, loss: float) -> None:
            bar.update(job, advance=1, description=f"{name} CNN, loss {loss:.3f}")

        model, weights, z = fit_cnn_model(fs, rows, y_clip, recipe, task=task, seed=args.seed, threads=2,
                                          progress=epoch_done)
    onx = build_onnx(weights, metadata={"labels": list(model.labels), "normalisation": model.normalisation,
                                        "recipe": dataclasses.asdict(recipe.cnn), "seed": str(args.seed)})
    path = args.out / f"{name}-cnn.onnx"
    save_onnx(onx, path)
    got = CnnModel(path).predict_proba(z[:64])
    err = float(np.abs(got - reference_forward(weights, z[:64])).max())
    if err > 1e-4:
        raise ModelError(f"{path}: ONNX output differs from the numpy reference by {err:.2e}")
    print(f"{name} CNN: {len(z)} windows, {path} ({path.stat().st_size / 1e3:.0f} kB, {time.time() - t0:.0f} s)")
    return path.name


def _place_encoder(out: Path) -> None:
    """The models read the speech encoder from their own folder: copy the shipped one there if needed."""
    import shutil

    from .encoder import DEFAULT_ENCODER

    out.mkdir(parents=True, exist_ok=True)
    target = out / DEFAULT_ENCODER.name
    if target.resolve() != DEFAULT_ENCODER.resolve():
        shutil.copyfile(DEFAULT_ENCODER, target)


def _shipped_calibration(report: dict | None, name: str) -> dict:
    """Temperature (and for emotion the uncertain threshold) that evaluate fitted on held-out speakers."""
    cal = (report or {}).get("tasks", {}).get(name, {}).get("calibration")
    if not cal:
        return {}
    keep = ("temperature",) if name == "gender" else ("temperature", "uncertain_below")
    return {k: cal[k] for k in keep if k in cal}


def model_card(name: str, used, report: dict | None, *, cnn: bool = False) -> dict:
    """The short card every model carries in its metadata (shown on the page and by `emotion-monitor models`)."""
    corpora = sorted({u.corpus for u in used})
    ua = {}
    for c in corpora:
        lv = (report or {}).get("tasks", {}).get(name, {}).get("results", {}).get("speaker-independent", {}).get(c)
        if lv:
            ua[c] = round(lv.get("session", lv["clip"])["ua"], 3)
    emotion = name != "gender"
    what = "voice gender (female/male)"
    if emotion:
        what = "7 emotions" + (" of English speech" if name.endswith("-en") else "")
    return {"name": f"voice-emotion-monitor {name}", "version": f"{date.today():%Y.%m.%d}",
            "date": f"{date.today():%Y-%m-%d}",
            "summary": f"{what}; MLP on pooled spectral and voice statistics"
                       f"{' and speech-encoder states' if emotion else ''} of 1.5 s windows"
                       f"{', averaged with a log-mel CNN' if cnn else ''}; "
                       f"trained on {', '.join(corpora)}; speaker-independent UA (session mode) {ua or 'not evaluated'}",
            "licence": "weights non-commercial: RAVDESS CC BY-NC-SA 4.0, TESS CC BY-NC-ND 4.0, ASED and BAVED "
                       "research use only; speech encoder resemblyzer Apache-2.0; code MIT",
            "corpora": json.dumps(corpora)}


def _recipe_json(recipe) -> dict:
    d = recipe.asdict()
    return json.loads(json.dumps(d, default=str))


def _check_parity(path: Path, model, x: np.ndarray) -> None:
    """The exported graph must reproduce sklearn's probabilities."""
    from .onnx_model import OnnxClassifier

    got = OnnxClassifier(path).predict_proba(x)
    want = model.predict_proba(x)
    err = float(np.abs(got - want).max())
    if err > 1e-4:
        raise ModelError(f"{path}: ONNX output differs from sklearn by {err:.2e}")


# Leave-one-corpus-out runs: (task, corpus left out). Gender-only BAVED and the extra voices have no emotions.
# Three runs, not every corpus: each costs a full training and a session pass (about 10 min on 2 cores).
# English acted speech unseen (RAVDESS), another language unseen for emotion (ASED) and for gender (BAVED).
LOCO = (("emotion", "ravdess"), ("emotion", "ased"), ("gender", "baved"))


def run_evaluate(args) -> int:
    from rich.progress import Progress

    from .evaluate import TASK_LABELS, CvRun, corpus_folds, cross_validate_many, random_folds, speaker_folds

    t0 = time.time()
    recipe = _recipe(args)
    utts = _load(args)
    experiments = _read_json(args.experiments, "experiments file") if args.experiments else None
    output_dir(args.out)
    session = None if args.no_session else _session_runner(args, recipe)
    report = {"recipe": _recipe_json(recipe), "seed": args.seed, "n_clips": len(utts),
              "generated": time.strftime("%Y-%m-%d %H:%M:%S"), "data": _summary(utts), "tasks": {}}
    feats = {task: _features(utts, recipe, args, task) for task in ("emotion", "gender")}
    corpora = sorted({u.corpus for u in utts})
    loco = [(task, c) for task, c in LOCO if c in corpora and len(corpora) > 1]
    s_folds = speaker_folds(utts)
    # (model name, task, language, split, folds, session runner): every model train writes, on speaker folds
    # (a per-language model only on its language's corpora), then the cross-corpus and random-split runs.
    runs = [(name, task, language, "speaker-independent", s_folds, session)
            for task in ("emotion", "gender") for name, language in _models_of(task, utts)]
    runs += [(task, task, "any", f"without {c} (cross-corpus)", corpus_folds(utts, [c]), session)
             for task, c in loco]
    if not args.no_random:
        runs += [(task, task, "any", "random split (speakers leak)", random_folds(utts, seed=args.seed), None)
                 for task in ("emotion", "gender")]
    for name, task, *_ in runs:
        report["tasks"].setdefault(name, {"labels": list(TASK_LABELS[task]), "results": {}, "folds": []})
    # Every fold of every run in one pool, so both cores stay busy to the end.
    with Progress() as bar:
        task_bar = bar.add_task("cross-validation folds", total=sum(len(r[4]) for r in runs))
        cvs = cross_validate_many([CvRun(feats[task], task, folds, runner, language)
                                   for _, task, language, _, folds, runner in runs],
                                  recipe, seed=args.seed, progress=lambda: bar.advance(task_bar))
    for (name, task, _, split, folds, _), cv in zip(runs, cvs):
        res = report["tasks"][name]
        res["results"][split] = _split_results(cv, utts, task, split, corpora)
        if split == "speaker-independent":
            res["folds"] = _fold_scores(cv, folds, task, utts)
            res["calibration"] = _calibration(cv, task)
    report["seconds"] = round(time.time() - t0, 1)
    if experiments is not None:
        report["experiments"] = experiments
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    from .report import render_html

    (args.out / "report.html").write_text(render_html(report))
    _print_headline(report)
    print(f"report: {args.out / 'report.html'} ({report['seconds']:.0f} s)")
    return 0


def _session_runner(args, recipe):
    """The session-mode runner evaluate was given (streamer.session_eval, passed in by the CLI), bound to the
    recipe's window and a speech encoder per worker process."""
    runner = getattr(args, "session_runner", None)
    if runner is None:
        return None
    from functools import partial

    from .featurize import load_audio
    from .labels import EMOTIONS, GENDERS

    def run(utts, clip_ids, model, *, task, seed):
        from .encoder import StreamingEncoder

        other = GENDERS if task == "emotion" else EMOTIONS
        return runner(utts, clip_ids, model, task=task, other_labels=other, window_ms=recipe.window_ms,
                      hop_ms=recipe.hop_ms, seed=seed, load_audio=load_audio,
                      encoder=StreamingEncoder() if recipe.uses_encoder(task) else None)

    return partial(run)


def _split_results(cv: dict, utts, task: str, split: str, corpora) -> dict:
    from .datasets import words_tell_emotion
    from .evaluate import TASK_LABELS, summarise

    # A corpus with clips whose words were written for their emotion is also scored without them: a score the
    # words cannot lift.
    tied = np.array([task == "emotion" and words_tell_emotion(u) for u in utts])
    corp = np.array([u.corpus for u in utts])
    out = {}
    for c in corpora:
        labels = None
        if split.startswith("without") and task == "emotion":
            # Cross-corpus: score only the classes the held-out corpus shares with the training corpora.
            train = {u.emotion for u in utts if u.corpus != c and u.emotion}
            labels = [e for e in TASK_LABELS[task] if e in train and any(u.emotion == e for u in utts if u.corpus == c)]
        rows = {c: summarise(cv, utts, task, corpus=c, labels=labels)}
        if (tied & (corp == c)).any():
            rows[f"{c}, words shared by every emotion"] = summarise(cv, utts, task, corpus=c, labels=labels,
                                                                    clips=~tied)
        out.update({name: dict(sm, labels=labels or list(TASK_LABELS[task])) for name, sm in rows.items() if sm})
    if task == "gender":
        out["all"] = dict(summarise(cv, utts, task), labels=list(TASK_LABELS[task]))
    return out


def _fold_scores(cv: dict, folds, task: str, utts) -> list:
    """Clip UA per fold, each named by the speakers it tested (a per-language run tests some of a fold's)."""
    from .evaluate import TASK_LABELS
    from .metrics import score

    rows = []
    for fi, f in enumerate(folds):
        m = cv["fold"] == fi
        if m.any():
            s = score(cv["clip_true"][m], cv["clip_probs"][m], len(TASK_LABELS[task]))
            tested = [utts[int(i)] for i in cv["clip"][m]]
            speakers = Counter(c for c, _ in sorted({(u.corpus, u.speaker) for u in tested}))
            name = f.name.split(":")[0] + ": " + ", ".join(f"{c} {n}" for c, n in sorted(speakers.items()))
            rows.append({"name": name, "ua": s.ua, "n": s.n})
    return rows


def _calibration(cv: dict, task: str) -> dict:
    """Temperature and uncertain threshold fitted on the speaker-independent held-out windows; ECE before and
    after, per window and per clip."""
    from .calibration import apply_temperature, choose_uncertain_threshold, fit_temperature
    from .metrics import reliability

    temp = fit_temperature(cv["win_probs"], cv["win_true"])
    wp = apply_temperature(cv["win_probs"], temp)
    out = {"temperature": round(temp, 4),
           "ece_window_before": reliability(cv["win_probs"], cv["win_true"])[0],
           "ece_window_after": reliability(wp, cv["win_true"])[0],
           "ece_clip_before": reliability(cv["clip_probs"], cv["clip_true"])[0],
           "ece_clip_after": reliability(apply_temperature(cv["clip_probs"], temp), cv["clip_true"])[0]}
    if task == "emotion":
        out.update(choose_uncertain_threshold(wp, cv["win_true"]))
    return out


def _print_headline(report: dict) -> None:
    for task, res in report["tasks"].items():
        for split, sets in res["results"].items():
            for name, lv in sets.items():
                c, sess = lv["clip"], lv.get("session")
                print(f"{task:8s} {split:34s} {name:8s} clip UA {c['ua']:.3f} acc {c['accuracy']:.3f} "
                      f"ECE {c['ece']:.3f} | window UA {lv['window']['ua']:.3f}"
                      + (f" | session UA {sess['ua']:.3f}" if sess else "")
                      + (f" (prior-corrected {lv['session prior-corrected']['ua']:.3f})"
                         if lv.get("session prior-corrected") else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ModelError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
