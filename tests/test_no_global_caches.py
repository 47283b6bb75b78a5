"""No module-level mutable cache and no ``id()``-keyed lookup in the runtime packages.

Values that are reused belong to an object whose lifetime is explicit (a prepared network, a
store, a live snapshot, a replay worker), never to a module: a module-level cache outlives the
snapshot it was built for, keys on ``id()`` can be reused by a new object, and either makes a
pure-looking function depend on what ran before it. The scan reads the syntax tree of every
module of ``models``, ``solver``, ``scenarios`` and ``promise`` and reports:

- ``functools.cache`` / ``lru_cache`` on a function that takes parameters (a cache keyed by its
  arguments; a zero-parameter function holds exactly one value, a lazily loaded constant such
  as the offline postal-code table, and is allowed);
- any call of ``id()`` (the identity of an object is no key: it is reused once the object goes);
- a ``global`` statement (a function rebinding module state);
- a module-level or class-level mutable container (dict, list, set, OrderedDict, defaultdict,
  deque, weak dictionaries, Counter) that the module mutates, and any module-level instance of
  a class whose name says it is a cache.
"""

from __future__ import annotations

import ast
import pathlib
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("models", "solver", "scenarios", "promise")
CACHE_DECORATORS = frozenset({"cache", "lru_cache"})
CONTAINERS = frozenset(
    {
        "dict",
        "list",
        "set",
        "OrderedDict",
        "defaultdict",
        "deque",
        "Counter",
        "WeakKeyDictionary",
        "WeakValueDictionary",
        "WeakSet",
    }
)
MUTATORS = frozenset(
    {
        "add",
        "append",
        "appendleft",
        "clear",
        "discard",
        "extend",
        "insert",
        "move_to_end",
        "pop",
        "popitem",
        "put",
        "remove",
        "setdefault",
        "update",
    }
)


def _callee(node: ast.expr) -> str | None:
    """The last name of a called or referenced callable (``functools.lru_cache`` → lru_cache)."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_container(value: ast.expr | None) -> bool:
    """Whether ``value`` builds a mutable container."""
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    return isinstance(value, ast.Call) and _callee(value) in CONTAINERS


def _is_cache_instance(value: ast.expr | None) -> bool:
    """Whether ``value`` instantiates a class named as a cache (``PerSnapshot`` included)."""
    if not isinstance(value, ast.Call):
        return False
    name = _callee(value) or ""
    return "cache" in name.lower() or name == "PerSnapshot"


def _targets(statement: ast.stmt) -> list[tuple[str, ast.expr | None]]:
    """Names bound by an assignment statement and the value bound."""
    if isinstance(statement, ast.Assign):
        names = [t.id for t in statement.targets if isinstance(t, ast.Name)]
        return [(name, statement.value) for name in names]
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return [(statement.target.id, statement.value)]
    return []


def _mutated_names(tree: ast.Module) -> set[str]:
    """Names (plain or as an attribute) whose value the module mutates in place."""

    def name_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        return None

    mutated: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript):
                    name = name_of(target.value)
                    if name is not None:
                        mutated.add(name)
                elif isinstance(node, ast.AugAssign):
                    name = name_of(target)
                    if name is not None:
                        mutated.add(name)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
        ):
            name = name_of(node.func.value)
            if name is not None:
                mutated.add(name)
    return mutated


def findings(source: str, label: str = "<source>") -> list[str]:
    """Every module-level cache, ``id()`` call and ``global`` statement in ``source``."""
    tree = ast.parse(source)
    found: list[str] = []
    mutated = _mutated_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            takes = (
                arguments.posonlyargs
                or arguments.args
                or arguments.kwonlyargs
                or arguments.vararg
                or arguments.kwarg
            )
            for decorator in node.decorator_list:
                if _callee(decorator) in CACHE_DECORATORS and takes:
                    found.append(f"{label}:{node.lineno}: cache on {node.name}() keyed by its args")
        elif (
            isinstance(node, ast.Call) and _callee(node) == "id" and isinstance(node.func, ast.Name)
        ):
            found.append(f"{label}:{node.lineno}: id() used as an identity key")
        elif isinstance(node, ast.Global):
            found.append(f"{label}:{node.lineno}: global {', '.join(node.names)}")
    scopes: list[list[ast.stmt]] = [tree.body]
    scopes += [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for body in scopes:
        for statement in body:
            for name, value in _targets(statement):
                if _is_cache_instance(value):
                    found.append(f"{label}:{statement.lineno}: {name} is a shared cache")
                elif _is_container(value) and name in mutated:
                    found.append(f"{label}:{statement.lineno}: {name} is mutated shared state")
    return found


def _package_findings() -> list[str]:
    """Findings over every runtime module."""
    found: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            label = str(path.relative_to(ROOT))
            found.extend(findings(path.read_text(encoding="utf-8"), label))
    return found


def test_runtime_packages_hold_no_module_level_caches() -> None:
    """models/, solver/, scenarios/ and promise/ keep no module cache and key nothing on id()."""
    assert _package_findings() == []


# Each row is a snippet the scan must report; the comment says which rule catches it.
CAUGHT = [
    # a memo keyed by the arguments
    "import functools\n@functools.lru_cache(maxsize=8)\ndef f(x):\n    return x\n",
    # the bare decorator form
    "from functools import cache\n@cache\ndef f(x, *, y=1):\n    return x\n",
    # a method memo keys on self and keeps every instance alive
    "import functools\nclass A:\n    @functools.cache\n    def f(self):\n        return 1\n",
    # an identity-keyed lookup
    "def f(o, seen):\n    return seen.get(id(o))\n",
    # module state rebound by a function
    "_STATE = None\ndef init(v):\n    global _STATE\n    _STATE = v\n",
    # a module dict filled on use
    "_SEEN: dict[str, int] = {}\ndef f(k):\n    _SEEN[k] = 1\n",
    # an OrderedDict trimmed on use
    "from collections import OrderedDict\n_LRU = OrderedDict()\ndef f(k):\n"
    "    _LRU.move_to_end(k)\n",
    # a class attribute shared by every instance
    "class A:\n    _memo = {}\n    def f(self, k):\n        self._memo.setdefault(k, 1)\n",
    # a cache object at module level, however it is used
    "class RowCache:\n    pass\n_ROWS = RowCache()\n",
]

# Each row is a snippet the scan must accept.
ACCEPTED = [
    # a lazily loaded constant: no parameters, one value
    "import functools\n@functools.cache\ndef table():\n    return (1, 2)\n",
    # a constant mapping nobody mutates
    "DEADLINES = {'ground': 14}\ndef f(k):\n    return DEADLINES[k]\n",
    # a memo owned by an instance
    "class A:\n    def __init__(self):\n        self.memo = {}\n    def f(self, k):\n"
    "        self.memo[k] = 1\n",
    # a local dict inside a function
    "def f(items):\n    seen = {}\n    for i in items:\n        seen[i] = 1\n    return seen\n",
]


@pytest.mark.parametrize("source", CAUGHT)
def test_the_scan_reports_each_kind_of_shared_cache(source: str) -> None:
    """Every pattern the rule forbids is reported (the scan can fail)."""
    assert findings(textwrap.dedent(source))


@pytest.mark.parametrize("source", ACCEPTED)
def test_the_scan_accepts_owned_memos_and_constants(source: str) -> None:
    """Constants, lazily loaded constants and instance-owned memos are not reported."""
    assert findings(textwrap.dedent(source)) == []
