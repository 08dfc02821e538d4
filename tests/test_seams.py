"""Public seams between the packages (issue 11): no package reads another's underscore names, the imports run
one way (streamer -> web, streamer -> models -> dsp, benchmarks -> everything), and the command line turns only
the project's own user-facing errors into one line."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("streamer", "dsp", "models", "web", "benchmarks")
# Which packages each package may import (benchmarks: only the CLI entry point, lazily, for `bench`).
ALLOWED = {"streamer": {"web", "models", "dsp"}, "models": {"dsp"}, "dsp": set(), "web": set(),
           "benchmarks": set(PACKAGES)}
LAZY_BENCH = {"streamer/cli.py"}


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield pkg, path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(tree):
    """(node, module, [names], in_function) for every import; relative imports resolve to the own package."""
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield child, a.name, [], in_function, a.asname or a.name.split(".")[0]
            elif isinstance(child, ast.ImportFrom):
                yield child, child.module or "", [a.name for a in child.names], in_function, child.level
            yield from walk(child, inner)

    yield from walk(tree, False)


def _target(module: str, level) -> str | None:
    """The project package an import reaches, or None (relative imports stay inside their package)."""
    if isinstance(level, int) and level > 0:
        return None
    top = module.split(".")[0]
    return top if top in PACKAGES else None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(pkg: str, tree) -> list[str]:
    found, modules = [], {}  # modules: local name -> the other package's module it is bound to
    for node, module, names, _, extra in _imports(tree):
        other = _target(module, extra)
        if other is None or other == pkg:
            continue
        parts = module.split(".")
        found += [f"{module} (line {node.lineno})" for p in parts if _private(p)]
        found += [f"{module}.{n} (line {node.lineno})" for n in names if _private(n)]
        if isinstance(node, ast.Import):
            modules[extra] = module
        else:
            modules.update({a.asname or a.name: f"{module}.{a.name}" for a in node.names})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules \
                and _private(node.attr):
            found.append(f"{modules[node.value.id]}.{node.attr} (line {node.lineno})")
    return found


def test_no_module_imports_another_packages_underscore_names():
    bad = {f: uses for pkg, f, tree in _modules() if (uses := _private_uses(pkg, tree))}
    assert not bad, f"private names of another package: {bad}"


def test_imports_run_one_way():
    bad = []
    for pkg, f, tree in _modules():
        for node, module, _, in_function, extra in _imports(tree):
            other = _target(module, extra)
            if other is None or other == pkg or other in ALLOWED[pkg]:
                continue
            if other == "benchmarks" and f in LAZY_BENCH and in_function:
                continue
            bad.append(f"{f}:{node.lineno} imports {module}")
    assert not bad, "imports against the direction streamer -> web, streamer -> models -> dsp: " + "; ".join(bad)


def test_the_checks_see_a_private_import_and_a_backward_arrow():
    tree = ast.parse("from streamer.cli import _build\nimport models.evaluate as ev\nev._balance(1)\n")
    assert len(_private_uses("web", tree)) == 2
    assert [m for _, m, *_ in _imports(tree)] == ["streamer.cli", "models.evaluate"]


# -- error policy ---------------------------------------------------------------------------------------------
def test_user_errors_are_one_line_and_internal_errors_keep_their_traceback(monkeypatch, capsys):
    import streamer.cli as cli
    from streamer.errors import NoInputDevice

    def no_device(args):
        raise NoInputDevice("no audio input device matches 'USB'")

    monkeypatch.setattr(cli, "cmd_devices", no_device)
    assert cli.main(["devices"]) == 1
    assert capsys.readouterr().err == "emotion-monitor: error: no audio input device matches 'USB'\n"

    for bug in (ValueError("a bug"), OSError("a bug"), KeyError("a bug")):
        def broken(args, bug=bug):
            raise bug

        monkeypatch.setattr(cli, "cmd_devices", broken)
        with pytest.raises(type(bug)):  # not swallowed into "error: ..." with exit 1
            cli.main(["devices"])


# -- one sample rate, one window default, the pooled layout ------------------------------------------------------
def test_pooling_rejects_other_mel_counts_and_windows_take_the_models_values():
    import dsp
    from dsp.config import SAMPLE_RATE, FeatureConfig
    from dsp.pooling import check_pooling_config

    assert FeatureConfig().sr == SAMPLE_RATE
    check_pooling_config(FeatureConfig())
    for changes in ({"n_mels": 40}, {"n_mfcc": 13}):
        with pytest.raises(ValueError, match="pooled window vector"):
            check_pooling_config(FeatureConfig(**changes))
    with pytest.raises(TypeError):  # no second default to drift from the model's metadata
        dsp.FrameWindower(FeatureConfig())
