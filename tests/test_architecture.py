"""The shape of the package, enforced: layers import downwards only, no cycles, no borrowed private names,
TensorFlow only in the worker, short modules and functions, a docstring that says what each module owns.

Read from the source with ``ast`` (nothing is imported), so a violation is named with its file and line.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "harness"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SPLIT_EXEMPTION = "cannot be split"  # a comment with this phrase inside a long function says why it is one

# Layer of each top-level part of the package, and the layers it may import from. Leaves (errors,
# timeutil) may be imported by anyone and import nothing of ours.
LEAVES = {"errors", "timeutil", "__init__"}
ALLOWED: dict[str, set[str]] = {
    "spec": set(),
    "store": {"spec"},
    "data": {"store", "spec"},
    "worker": {"data", "store", "spec"},
    "orchestrate": {"data", "store", "spec"},
    "analysis": {"store", "spec"},
    "render": {"analysis", "store", "spec"},
    "cli": {"orchestrate", "render", "analysis", "data", "store", "spec"},
    "__main__": {"cli"},
}
TENSORFLOW = ("tensorflow", "keras")
TF_ALLOWED = ("harness/worker/", "harness/data/keras.py")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "harness.analysis.compare"
    target: str  # the imported module, e.g. "harness.store.results"
    names: tuple[str, ...]  # names taken from it (from-imports)
    line: int
    top_level: bool  # executed at import time (not inside a function or TYPE_CHECKING)


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    top_level = {id(n) for n in _top_level_statements(tree)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), node.lineno, id(node) in top_level)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield Import(name, node.module, tuple(a.name for a in node.names), node.lineno, id(node) in top_level)


def _top_level_statements(tree: ast.Module) -> Iterator[ast.stmt]:
    """Statements run at import time: module body, including try/if blocks, minus `if TYPE_CHECKING:`."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            stack += node.body + node.orelse + getattr(node, "finalbody", [])
            for handler in getattr(node, "handlers", []):
                stack += handler.body


ALL_IMPORTS = [imp for path in modules() for imp in imports(path)]


def test_layers_import_downwards_only() -> None:
    wrong = []
    for imp in ALL_IMPORTS:
        if not imp.target.startswith("harness"):
            continue
        source, target = layer_of(imp.module), layer_of(imp.target)
        if source == target or target in LEAVES and target != "__init__":
            continue
        if target == "__init__" and imp.target == "harness" and imp.names in ((), ("__version__",)):
            continue  # `from harness import __version__`
        if target == "__init__" and imp.target == "harness":  # `from harness import data` names a layer
            targets = set(imp.names)
        else:
            targets = {target}
        allowed = ALLOWED.get(source, set()) | LEAVES
        for t in targets - allowed - {source}:
            wrong.append(f"{imp.module}:{imp.line} ({source}) imports {imp.target} ({t})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_leaves_import_nothing_of_ours() -> None:
    wrong = [f"{i.module}:{i.line} imports {i.target}" for i in ALL_IMPORTS
             if layer_of(i.module) in {"errors", "timeutil"} and i.target.startswith("harness")]  # fmt: skip
    assert not wrong


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    known = {module_name(p) for p in modules()}
    for imp in ALL_IMPORTS:
        if not imp.top_level or not imp.target.startswith("harness"):
            continue
        targets = {imp.target} | {f"{imp.target}.{n}" for n in imp.names}
        graph.setdefault(imp.module, set()).update(t for t in targets if t in known and t != imp.module)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own submodule is not a cycle
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_private_name_is_imported_from_another_module() -> None:
    wrong = [f"{i.module}:{i.line} takes {n} from {i.target}" for i in ALL_IMPORTS
             if i.target.startswith("harness") and i.target != i.module
             for n in i.names if n.startswith("_") and not n.startswith("__")]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_tensorflow_is_imported_only_by_the_worker() -> None:
    wrong = [f"{i.module}:{i.line} imports {i.target}" for i in ALL_IMPORTS
             if i.target.split(".")[0] in TENSORFLOW
             and not str(_path_of(i.module)).startswith(TF_ALLOWED)]  # fmt: skip
    assert not wrong, "TensorFlow/Keras outside harness/worker/:\n" + "\n".join(wrong)


def _path_of(module: str) -> str:
    for path in modules():
        if module_name(path) == module:
            return str(path.relative_to(ROOT))
    raise KeyError(module)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_short_and_says_what_it_owns(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{lines} lines (at most {MAX_MODULE_LINES}): split it"
    tree = ast.parse(text)
    if path.name != "__main__.py":
        doc = ast.get_docstring(tree)
        assert doc and doc.strip(), "a module opens with one sentence on what it owns"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_are_short_or_say_why_not(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    comments = _comments_by_line(text)
    long = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
            length = node.end_lineno - node.lineno + 1
            body = " ".join(comments.get(n, "") for n in range(node.lineno, node.end_lineno + 1)).lower()
            if length > MAX_FUNCTION_LINES and SPLIT_EXEMPTION not in body:
                long.append(f"{node.name} ({length} lines, line {node.lineno})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines without a '{SPLIT_EXEMPTION}' comment: {long}"


def _comments_by_line(text: str) -> dict[int, str]:
    return {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.COMMENT}  # fmt: skip


def test_one_owner_per_concept() -> None:
    """The concepts that once had several implementations have one definition now."""
    sources = {module_name(p): p.read_text(encoding="utf-8") for p in modules()}

    def defined_in(pattern: str) -> list[str]:
        return sorted(m for m, src in sources.items() if pattern in src)

    assert defined_in("class GroupKey") == ["harness.analysis.samples"]
    assert defined_in("tempfile.mkstemp(") == ["harness.store.atomic"]  # the one writer
    assert defined_in("def json_safe(") == ["harness.store.jsonio"]
    assert defined_in("def git_commit(") == ["harness.store.provenance"]
    assert defined_in("def mismatches(") == ["harness.store.results"]  # the one evidence check
    assert defined_in("def median(") == ["harness.analysis.stats"]
    assert defined_in("np.median(") == ["harness.analysis.stats"]  # medians, means and CIs have one owner
    assert defined_in("class Stat:") == ["harness.analysis.stats"]
    assert defined_in('"mnist-5k": "') == ["harness.spec.names"]  # the one registry of names
