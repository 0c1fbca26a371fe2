"""The layout the design promises (../shared/DESIGN.md, README "Layout"):
kernels that never import scikit-learn, functions short enough to read at
once, and the public module paths users import."""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "emimpute"
KERNEL_FOLDERS = ("engine", "gaussian", "models")
# About 60 lines of code (docstrings, comments and blank lines not counted).
MAX_FUNCTION_LINES = 60
PUBLIC_MODULES = (
    "emimpute.ampute",
    "emimpute.cli",
    "emimpute.dask",
    "emimpute.datasets",
    "emimpute.diagnostics",
    "emimpute.exceptions",
    "emimpute.plotting",
    "emimpute.pooling",
    "emimpute.report",
    "emimpute.sensitivity",
)


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def _imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("folder", KERNEL_FOLDERS)
def test_kernels_import_neither_scikit_learn_nor_the_shells(folder):
    offending = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for module in _imported_modules(ast.parse(path.read_text())):
            outer = module.startswith(("sklearn", "emimpute.imputers", "pandas"))
            if outer or module in ("emimpute.cli", "emimpute.dask"):
                offending.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not offending, offending


def _code_lines(lines, node):
    docstring = set()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            docstring = set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number in range(node.lineno, node.end_lineno + 1)
        if number not in docstring
        and lines[number - 1].strip()
        and not lines[number - 1].strip().startswith("#")
    )


def test_no_function_is_over_sixty_lines_of_code():
    long = []
    for path in _sources():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(lines, node)
                if n > MAX_FUNCTION_LINES:
                    where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                    long.append(f"{where} {node.name} ({n} lines)")
    assert not long, long


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_paths_are_unchanged(name):
    importlib.import_module(name)


def test_every_estimator_is_exported_at_the_top():
    import emimpute
    from emimpute.imputers._registry import registered_imputers

    exported = {getattr(emimpute, name) for name in emimpute.__all__}
    for entry in registered_imputers():
        assert entry.estimator in exported, entry.name
