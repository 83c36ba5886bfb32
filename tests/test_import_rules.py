"""The package layers of docs/ARCHITECTURE.md, enforced by reading every module's imports (ast), so the
boundaries cannot silently erode: each tfrobust package imports only the packages below it, and no
module imports another module's private (underscore) names."""

import ast
import pathlib

import pytest

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1] / "tfrobust"

#: package → the tfrobust packages it may import (besides itself). ``core`` and ``errors`` are the
#: bottom layer everybody may use; ``errors`` imports nothing of tfrobust.
ALLOWED = {
    "errors": set(),
    "core": {"errors"},
    "data": {"core", "errors"},
    "layers": {"core", "errors"},
    "attacks": {"core", "errors"},
    "models": {"core", "errors", "layers"},
    "export": {"core", "errors", "data", "layers", "models"},
    "training": {"core", "errors", "data", "models", "attacks"},
    "evaluation": {"core", "errors", "data", "layers", "models", "attacks", "export"},
    "serving": {"core", "errors", "export"},
    "cli": {"core", "errors"},
    # Claims re-run (trains through train.py's flags, evaluates through evaluation): above both, below scripts.
    "reproduction": {"core", "errors", "data", "layers", "models", "attacks", "export", "evaluation"},
    # The programs (console scripts; trainers/*.py and export/*.py are shells over them): the top layer.
    "scripts": {"core", "errors", "cli", "data", "layers", "models", "attacks", "training", "export", "evaluation",
                "serving", "reproduction"},
    "__init__": set(),
}


def _package_of(parts):
    """The top-level tfrobust package of a dotted name's parts after "tfrobust" (module files count as
    packages: errors, cli)."""
    return parts[0] if parts else "__init__"


def _module_name(path, root):
    relative = path.relative_to(root).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ["tfrobust", *parts]


def _imports(tree, module_parts, is_package):
    """(imported module parts, imported names) for every import statement, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split("."), [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts if is_package else module_parts[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = node.module.split(".")
            yield target, [alias.name for alias in node.names], node.lineno


def violations(root=PACKAGE_ROOT):
    """Every broken rule under ``root`` (a tfrobust package directory), as readable lines."""
    root = pathlib.Path(root)
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        package = _package_of(module[1:])
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = f"{path.relative_to(root.parent)}"
        for target, names, line in _imports(tree, module, path.name == "__init__.py"):
            if not target or target[0] != "tfrobust":
                continue
            # ``from tfrobust import data, models`` imports the packages it names.
            targets = [["tfrobust", name] for name in names] if target == ["tfrobust"] else [target]
            for imported_parts in targets:
                imported = _package_of(imported_parts[1:])
                if imported != package and imported not in ALLOWED.get(package, set()):
                    found.append(f"{where}:{line}: {package} may not import {'.'.join(imported_parts)}")
            for name in names:
                # A private name of another module (tfrobust.x.y._helper), never the package's own
                # private submodules imported by their package (tfrobust.data importing _files).
                submodule = target + [name]
                is_own_submodule = submodule[:-1] == module and (root.parent / pathlib.Path(*submodule)).with_suffix(
                    ".py").exists()
                if name.startswith("_") and not name.startswith("__") and target != module \
                        and not is_own_submodule:
                    found.append(f"{where}:{line}: imports private name {name} from {'.'.join(target)}")
    return found


def test_every_module_respects_the_package_layers():
    assert violations() == []


def test_training_imports_no_concrete_layer_module():
    """Layers declare what they need (tfrobust.core.layer_needs); the engines never special-case one."""
    for path in (PACKAGE_ROOT / "training").rglob("*.py"):
        assert "tfrobust.layers" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("source,expected", [
    ("from tfrobust.models.components import group_count\n", "layers may not import tfrobust.models.components"),
    ("from tfrobust.layers.ode_block import _with_dtype\n", "imports private name _with_dtype"),
    ("import tfrobust.evaluation.robustness\n", "layers may not import tfrobust.evaluation.robustness"),
    ("from tfrobust import training\n", "layers may not import tfrobust.training"),
])
def test_the_checker_reports_what_the_old_tree_did(tmp_path, source, expected):
    """The checker fails on the boundary breaks this test was written against (issue 10)."""
    package = tmp_path / "tfrobust"
    (package / "layers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers" / "__init__.py").write_text("")
    (package / "layers" / "cifs.py").write_text(source)
    assert any(expected in line for line in violations(package)), violations(package)
