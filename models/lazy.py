"""Package exports loaded on first use, for packages whose modules are heavy to import.

A package's ``__init__`` names each export's home module; importing one light module of the
package (an error type, a migration list, a command's parser) then does not import the rest,
so a command line tool starts without the solver, DuckDB or SciPy it never uses. Type
checkers read the package's ``TYPE_CHECKING`` imports; ``tests/test_exports.py`` checks that
the table names exactly ``__all__``.

An export may share its home module's name (``solver.solve`` the function, in
``solver/solve.py``): importing a submodule binds it on its package, which would hide the
export, so the package keeps the export instead, as an eager ``from solver.solve import
solve`` in ``__init__`` would have.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
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


def lazy_exports(package: str, homes: Mapping[str, tuple[str, ...]]) -> None:
    """Make ``package`` load its exports on first use; ``homes``: module → names it exports."""
    module = sys.modules[package]
    module.__dict__[HOMES_KEY] = {name: home for home, names in homes.items() for name in names}
    module.__class__ = _LazyPackage
