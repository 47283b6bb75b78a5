"""Package exports loaded on first use, for packages whose modules are heavy to import.

A package's ``__init__`` imports its exports under ``if TYPE_CHECKING:`` only, and calls
:func:`lazy_exports`, which reads those imports from the package's source: the one list of
each export's home module, for type checkers and for the first use alike. Importing one light
module of the package (an error type, a migration list, a command's parser) then does not
import the rest, so a command line tool starts without the solver, DuckDB or SciPy it never
uses. ``tests/test_exports.py`` checks that the imports name exactly ``__all__``.

An export may share its home module's name (``solver.solve`` the function, in
``solver/solve.py``): importing a submodule binds it on its package, which would hide the
export, so the package keeps the export instead, as an eager ``from solver.solve import
solve`` in ``__init__`` would have.
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports"]

HOMES_KEY = "__lazy_homes__"


class _LazyPackage(types.ModuleType):
    """A package module whose exports are imported from their home module on first use."""

    def _homes(self) -> dict[str, str]:
        """Each export's home module."""
        homes: dict[str, str] = self.__dict__[HOMES_KEY]
        return homes

    def __getattr__(self, name: str) -> Any:
        """Import the module that defines ``name`` and keep the name on the package."""
        home = self._homes().get(name)
        if home is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        """Bind ``name``; a submodule bound over an export of its own name binds the export."""
        if (
            isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
            and self._homes().get(name) == value.__name__
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        """The package's exported names."""
        return sorted(self._homes())


def _type_checking_imports(source: str) -> dict[str, str]:
    """Each name imported under ``if TYPE_CHECKING:`` in ``source``, and its module."""
    homes: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    homes |= {alias.name: statement.module for alias in statement.names}
    return homes


def lazy_exports(package: str) -> None:
    """Make ``package`` load its exports, its ``TYPE_CHECKING`` imports, on first use."""
    module = sys.modules[package]
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    module.__dict__[HOMES_KEY] = _type_checking_imports(source)
    module.__class__ = _LazyPackage
