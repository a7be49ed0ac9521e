"""The public names: each exported from one public place, every ``__all__`` a literal that resolves,
lazy exports consistent with what type checkers see, and ``import kmsenvelope`` still light."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import kmsenvelope
from kmsenvelope._lazy import lazy_exports

# The packages users import from (tests/test_examples.py holds examples to the same list).
PUBLIC = (
    "kmsenvelope",
    "kmsenvelope.errors",
    "kmsenvelope.aws",
    "kmsenvelope.dynamodb",
    "kmsenvelope.sql",
    "kmsenvelope.testing",
)
LAZY = ("kmsenvelope", "kmsenvelope.aws", "kmsenvelope.dynamodb")
SRC = Path(kmsenvelope.__file__).resolve().parent
HEAVY = ("boto3", "botocore", "sqlalchemy", "rich", "click", "moto")


def _all_modules() -> list[str]:
    names = ["kmsenvelope"]
    for info in pkgutil.walk_packages(kmsenvelope.__path__, "kmsenvelope."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # importing it would run the CLI
            names.append(info.name)
    return sorted(names)


def _source(name: str) -> Path:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    return Path(module.__file__)


def _all_node(tree: ast.Module) -> ast.expr | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return node.value
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "__all__"
        ):
            return node.value
    return None


@pytest.mark.parametrize("name", _all_modules())
def test_all_is_a_literal_list_of_names_that_resolve(name: str) -> None:
    module = importlib.import_module(name)
    value = _all_node(ast.parse(_source(name).read_text(encoding="utf-8")))
    if value is None:
        assert not hasattr(module, "__all__")
        return
    assert isinstance(value, ast.List), f"{name}: __all__ must be a literal list, not computed"
    literal = [element.value for element in value.elts if isinstance(element, ast.Constant)]
    assert literal == list(module.__all__), f"{name}: __all__ must hold string literals only"
    assert len(set(literal)) == len(literal), f"{name}: __all__ lists a name twice"
    missing = [entry for entry in literal if getattr(module, entry, None) is None and entry != "__version__"]
    assert not missing, f"{name}: __all__ names that do not resolve: {missing}"


def test_no_name_is_exported_from_two_public_places() -> None:
    owners: dict[str, list[str]] = {}
    for name in PUBLIC:
        for entry in importlib.import_module(name).__all__:
            owners.setdefault(entry, []).append(name)
    doubles = {entry: places for entry, places in owners.items() if len(places) > 1}
    assert not doubles


def test_what_users_construct_is_at_the_top_level() -> None:
    from kmsenvelope.aws.branch_key_store import KeyStore
    from kmsenvelope.aws.key_store import BranchKeyStore, StaticBranchKeyStore
    from kmsenvelope.message.header import DecryptLimits

    assert kmsenvelope.DecryptLimits is DecryptLimits
    assert kmsenvelope.KeyStore is KeyStore
    assert kmsenvelope.BranchKeyStore is BranchKeyStore
    assert kmsenvelope.StaticBranchKeyStore is StaticBranchKeyStore
    store = StaticBranchKeyStore("id", "a5a2bd2c-6e35-4e0b-9f1b-4e0b9f1b4e0b", bytes(32), bytes(32))
    assert isinstance(store, kmsenvelope.BranchKeyStore)
    kmsenvelope.Envelope(kmsenvelope.RawAesKeyring("n", "k", bytes(32)), limits=kmsenvelope.DecryptLimits())


def _type_checking_imports(tree: ast.Module, package: str) -> dict[str, str]:
    """Exported name -> absolute module it is imported from, in the ``if TYPE_CHECKING:`` block."""
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    )
    found: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom), ast.dump(node)
        base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
        for alias in node.names:
            assert alias.asname == alias.name, f"{package}: import {alias.name} as {alias.name} (re-export)"
            found[alias.name] = f"{base}.{alias.name}" if node.module is None else base
    return found


@pytest.mark.parametrize("name", LAZY)
def test_lazy_exports_agree_with_all_and_type_checkers(name: str) -> None:
    """Adding a name means one line in each of __all__, _EXPORTS and TYPE_CHECKING: none may be missed."""
    module = importlib.import_module(name)
    seen_by_checkers = _type_checking_imports(ast.parse(_source(name).read_text(encoding="utf-8")), name)
    assert sorted(seen_by_checkers) == sorted(module.__all__)
    exports: dict[str, str] = module._EXPORTS
    for entry, source in exports.items():
        assert importlib.util.resolve_name(source, name) == seen_by_checkers[entry], entry
    submodules = set(module.__all__) - set(exports)
    for entry in submodules:
        assert seen_by_checkers[entry] == f"{name}.{entry}", f"{entry} is in __all__ but not in _EXPORTS"


@pytest.mark.parametrize("name", PUBLIC)
def test_dir_lists_every_export(name: str) -> None:
    module = importlib.import_module(name)
    listed = dir(module)
    assert set(module.__all__) <= set(listed)
    assert listed == sorted(listed)


def test_import_kmsenvelope_stays_light() -> None:
    """Importing the lazy packages and listing their names loads no optional or heavy dependency."""
    code = textwrap.dedent(
        f"""
        import sys
        import kmsenvelope, kmsenvelope.aws, kmsenvelope.dynamodb
        for module in (kmsenvelope, kmsenvelope.aws, kmsenvelope.dynamodb):
            dir(module)
        kmsenvelope.Envelope, kmsenvelope.DecryptLimits, kmsenvelope.StaticBranchKeyStore
        print(",".join(name for name in {HEAVY!r} if name in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# -- the helper itself ----------------------------------------------------------------------------


def _package(**exports: str) -> tuple[dict[str, Any], Any, Any]:
    namespace: dict[str, Any] = {"__name__": "kmsenvelope"}
    getattr_, dir_ = lazy_exports("kmsenvelope", namespace, exports, submodules=("errors",))
    return namespace, getattr_, dir_


def test_lazy_name_is_imported_on_first_use_and_then_cached() -> None:
    from kmsenvelope.suites import Suite

    namespace, getattr_, dir_ = _package(Suite=".suites")
    assert "Suite" not in namespace
    assert getattr_("Suite") is Suite
    assert namespace["Suite"] is Suite
    assert dir_() == ["Suite", "__name__", "errors"]


def test_lazy_submodule_and_unknown_names() -> None:
    import kmsenvelope.errors

    _, getattr_, _ = _package(Suite=".suites")
    assert getattr_("errors") is kmsenvelope.errors
    with pytest.raises(AttributeError, match="module 'kmsenvelope' has no attribute 'Nope'"):
        getattr_("Nope")
    with pytest.raises(ImportError, match="cannot import name 'Nope'"):
        exec("from kmsenvelope import Nope", {})


def test_lazy_name_missing_from_its_module_is_an_error() -> None:
    _, getattr_, _ = _package(NotThere=".suites")
    with pytest.raises(AttributeError, match="NotThere"):
        getattr_("NotThere")


def test_a_name_cannot_be_both_a_name_and_a_submodule() -> None:
    with pytest.raises(ValueError, match="errors"):
        lazy_exports("kmsenvelope", {}, {"errors": ".errors"}, submodules=("errors",))


def test_public_packages_use_the_one_helper() -> None:
    for name in LAZY:
        module: ModuleType = importlib.import_module(name)
        assert module.__getattr__.__module__ == "kmsenvelope._lazy", name
    for path in SRC.rglob("*.py"):
        if path.name == "_lazy.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_level = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert "__getattr__" not in {node.name for node in module_level}, f"ad-hoc lazy loader in {path}"
