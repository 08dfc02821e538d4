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
from pathlib import Path

import numpy as np

from .datasets import load_corpora
from .errors import ModelError

__all__ = ["register", "run_train", "run_evaluate", "main", "SHIPPED_HOLDOUT"]

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
    p.add_argument("--experiments", type=Path, default=None, help="JSON list of design experiments to include")
    p.set_defaults(run=run_evaluate)
    from .voices import register as register_voices

    register_voices(subparsers)


def _recipe(args):
    from .recipe import Recipe

    r = Recipe()
    changes = {k: v for k, v in (("window_ms", args.window_ms), ("hop_ms", args.hop_ms)) if v is not None}
    return dataclasses.replace(r, **changes)


def _load(args):
    utts = load_corpora(args.data)
    if args.voices:
        from .voices import load_voices

        utts += load_voices(args.voices)
    return utts


def _features(utts, recipe, args, task):
    from .featurize import featurize

    return featurize(utts, augs=recipe.augs_for(task), window_ms=recipe.window_ms, hop_ms=recipe.hop_ms, seed=args.seed,
                     cache_dir=args.cache_dir)


def _summary(utts) -> dict:
    spk = sorted({u.speaker for u in utts})
    return {"clips": len(utts), "speakers": len(spk), "by_corpus": dict(Counter(u.corpus for u in utts)),
            "by_gender": dict(Counter(u.gender for u in utts)), "speaker_ids": spk}


def run_train(args) -> int:
    from .cards import write_cards
    from .evaluate import TASK_LABELS, _balance_weights, prepare_train, task_labels
    from .export import model_metadata, save_onnx, to_onnx
    from .featurize import GATE_VERSION, MIN_SPEECH_FRACTION
    from .recipe import fit_classifier

    t0 = time.time()
    recipe = _recipe(args)
    utts = [u for u in _load(args) if u.speaker not in set(args.holdout)]
    report = json.loads(args.report.read_text()) if args.report else None
    summaries = {}
    for task in ("emotion", "gender"):
        t1 = time.time()
        fs = _features(utts, recipe, args, task)
        print(f"{task} features: {fs.x.shape[0]} windows from {len(utts)} clips ({time.time() - t1:.0f} s)")
        y_clip = task_labels(fs.utts, task)
        x, y, prior = prepare_train(fs, np.arange(len(fs.x)), y_clip, recipe, seed=args.seed,
                                    norm=recipe.norm_for(task))
        sw = _balance_weights(y) if task == "gender" else None
        model = fit_classifier(x, y, recipe, task=task, seed=args.seed, sample_weight=sw)
        used = [u for u, lab in zip(utts, y_clip) if lab >= 0]
        summaries[task] = _summary(used)
        norm = {"mode": recipe.norm_for(task)}
        if prior is not None:
            norm.update(prior_count=recipe.norm_prior_count, prior_mean=[round(float(v), 6) for v in prior])
        meta = model_metadata(labels=TASK_LABELS[task], window_ms=recipe.window_ms, hop_ms=recipe.hop_ms,
                              normalisation=norm, recipe=_recipe_json(recipe), training=dict(
                                  _summary(used), held_out_speakers=list(args.holdout), seed=args.seed),
                              gate=f"{GATE_VERSION}: dsp.vad.StreamingVad speech in >= {MIN_SPEECH_FRACTION:g} "
                                   "of the window's frames")
        onx = to_onnx(model, labels=TASK_LABELS[task], metadata=meta)
        path = args.out / f"{task}.onnx"
        save_onnx(onx, path)
        _check_parity(path, model, x[:256])
        print(f"{task}: {len(x)} windows, {path} ({path.stat().st_size / 1e3:.0f} kB, {time.time() - t1:.0f} s)")
    write_cards(args.out, report=report, training=summaries, holdout=list(args.holdout), recipe=recipe)
    print(f"done in {time.time() - t0:.0f} s")
    return 0


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


def run_evaluate(args) -> int:
    from rich.progress import Progress

    from .evaluate import TASK_LABELS, cross_validate, random_folds, speaker_folds, summarise
    from .metrics import score
    from .report import render_html

    t0 = time.time()
    recipe = _recipe(args)
    utts = _load(args)
    s_folds, r_folds = speaker_folds(utts), random_folds(utts, seed=args.seed)
    runs = [("speaker-independent", s_folds)] + ([] if args.no_random else [("random split (speakers leak)", r_folds)])
    report = {"recipe": _recipe_json(recipe), "seed": args.seed, "n_clips": len(utts),
              "generated": time.strftime("%Y-%m-%d %H:%M:%S"), "data": _summary(utts), "tasks": {}}
    feats = {task: _features(utts, recipe, args, task) for task in ("emotion", "gender")}
    with Progress() as bar:
        total = 2 * sum(len(f) for _, f in runs)
        task_bar = bar.add_task("cross-validation folds", total=total)
        for task in ("emotion", "gender"):
            fs = feats[task]
            res = {"labels": list(TASK_LABELS[task]), "results": {}, "folds": []}
            for split, folds in runs:
                cv = cross_validate(fs, task, recipe, folds, seed=args.seed,
                                    progress=lambda: bar.advance(task_bar))
                corpora = sorted({u.corpus for u in utts})
                sets = {c: summarise(cv, utts, task, corpus=c) for c in corpora}
                if task == "gender":
                    sets["all"] = summarise(cv, utts, task)
                res["results"][split] = {k: v for k, v in sets.items() if v}
                if split == "speaker-independent":
                    for fi, f in enumerate(folds):
                        m = cv["fold"] == fi
                        if m.any():
                            s = score(cv["clip_true"][m], cv["clip_probs"][m], len(TASK_LABELS[task]))
                            res["folds"].append({"name": f.name, "ua": s.ua, "n": s.n})
            report["tasks"][task] = res
    report["seconds"] = round(time.time() - t0, 1)
    if args.experiments:
        report["experiments"] = json.loads(Path(args.experiments).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    (args.out / "report.html").write_text(render_html(report))
    _print_headline(report)
    print(f"report: {args.out / 'report.html'} ({report['seconds']:.0f} s)")
    return 0


def _print_headline(report: dict) -> None:
    for task, res in report["tasks"].items():
        for split, sets in res["results"].items():
            for name, lv in sets.items():
                c = lv["clip"]
                print(f"{task:8s} {split:30s} {name:10s} clip UA {c['ua']:.3f} acc {c['accuracy']:.3f} "
                      f"F1 {c['macro_f1']:.3f} ECE {c['ece']:.3f} | window UA {lv['window']['ua']:.3f}")


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
