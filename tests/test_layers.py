"""The layering of docs/architecture.md, checked on the code's own imports, and the size
of every function.

``ALLOWED`` is the table of allowed imports between the top-level parts of ``lensllm``
(written once, here and in ``docs/architecture.md``). The test reads every module's imports
(``import`` and ``from ... import``, also those inside functions) and fails on any import
between two parts that the table does not allow, on a part the table does not know, and on
an import cycle between parts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lensllm

SRC = Path(lensllm.__file__).parent

#: part -> the parts it may import (``exceptions``, ``_version`` and the package root are
#: allowed to all).
ALLOWED: dict[str, set[str]] = {
    "exceptions": set(),
    "outputs": set(),
    "inputs": set(),
    "laws": set(),
    "store": {"outputs", "inputs"},
    "selection": {"laws"},
    "finetune": {"store", "inputs", "outputs"},
    "bench": {"laws", "selection", "outputs", "inputs"},
    "ntk": {"laws", "store", "finetune", "outputs", "inputs"},
    "pipeline": {"laws", "store", "selection", "finetune", "ntk", "outputs", "inputs"},
    "zoo": {"finetune"},
    "report": {"bench", "pipeline", "store", "outputs"},
    "api": {"laws", "store", "selection", "bench", "ntk", "pipeline", "report", "outputs",
            "inputs"},
    "commands": {"laws", "store", "selection", "finetune", "bench", "ntk", "pipeline",
                 "zoo", "report", "outputs", "inputs", "api"},
    "cli": {"commands"},
    # The package root hands the API's names on, lazily (``lensllm.fit``...), and the
    # ``bench`` package made callable (``lensllm.bench(...)``).
    "__init__": {"api", "bench"},
}
FREE = {"exceptions", "__init__", "_version"}
#: The longest a function may be (lines from ``def`` to its last line).
MAX_FUNCTION_LINES = 80


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_edges(src: Path = SRC) -> set[tuple[str, str, str]]:
    """``(from part, to part, file)`` for every import between two parts of ``lensllm``."""
    edges = set()
    for path in src.rglob("*.py"):
        rel = path.relative_to(src.parent).with_suffix("")
        here = _part(".".join(rel.parts).removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.startswith("lensllm.") and _part(name) != here:
                    edges.add((here, _part(name), str(rel)))
    return edges


def test_every_part_is_in_the_table():
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    missing = parts - FREE - set(ALLOWED)
    assert not missing, f"parts missing from ALLOWED: {missing}"


def test_imports_follow_the_layer_table():
    bad = sorted(f"{f}: {a} imports {b}" for a, b, f in import_edges()
                 if b not in FREE and b not in ALLOWED.get(a, set()))
    assert not bad, "imports the layer table does not allow:\n" + "\n".join(bad)


def test_the_layer_table_has_no_cycle():
    done: set[str] = set()

    def visit(part: str, path: tuple[str, ...]) -> None:
        assert part not in path, f"cycle: {' -> '.join(path + (part,))}"
        if part not in done:
            for dep in ALLOWED[part]:
                visit(dep, path + (part,))
            done.add(part)

    for part in ALLOWED:
        visit(part, ())


def test_the_check_catches_an_upward_import(tmp_path):
    """The edge reader sees imports inside functions (where lensllm imports lazily)."""
    pkg = tmp_path / "lensllm"
    (pkg / "laws").mkdir(parents=True)
    (pkg / "laws" / "x.py").write_text("def f():\n    from lensllm.bench import y\n")
    assert import_edges(pkg) == {("laws", "bench", str(Path("lensllm/laws/x")))}


def test_numeric_core_imports_without_torch():
    """laws, selection, bench, store and the torch-free face of ntk never load torch."""
    import subprocess
    import sys

    code = ("import sys; import lensllm.laws, lensllm.selection, lensllm.bench, "
            "lensllm.store, lensllm.ntk; lensllm.ntk.NTKSpectrum([1.0], [1.0], eta=1.0); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_no_function_is_longer_than_the_limit():
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name} "
                                f"({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
