"""Figures of the code's layout, for a reshaping's before and after.

Prints: modules per package, the longest functions and the largest classes (lines), the
imports of the stages by the doors (the CLI, the console, the service) and of the
application layer (``syncd.app``) through which they should go, how many places assemble
the status document, and citations of a document the repository does not have. Reads the source only; imports nothing of syncd.

    python scripts/layout_figures.py [--top N]
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "syncd"
#: the doors: what a person or a process outside talks to
DOORS = ("syncd/cli", "syncd/cli.py", "syncd/console", "syncd/daemon", "syncd/daemon.py")
#: the stages a door should reach only through the application layer
STAGES = ("syncd.ledger", "syncd.scan", "syncd.plan", "syncd.sync", "syncd.watch", "syncd.gates")
#: the application layer: one module per use case, what the doors call
APP = "syncd.app"
#: a status document is assembled where the ledger's status query is called
STATUS_CALL = re.compile(r"\bledger_status\(")
CITATION = re.compile(r"SPEC §")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def is_door(path: Path) -> bool:
    name = rel(path)
    return any(name == d or name.startswith(d + "/") for d in DOORS)


def spans(tree: ast.AST, kind: type) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, kind) or (
            kind is ast.FunctionDef and isinstance(node, ast.AsyncFunctionDef)
        ):
            end = getattr(node, "end_lineno", node.lineno)
            out.append((end - node.lineno + 1, getattr(node, "name", "?")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    per_package: Counter[str] = Counter()
    functions: list[tuple[int, str]] = []
    classes: list[tuple[int, str]] = []
    door_imports: Counter[str] = Counter()
    status_sites: list[str] = []
    citations = 0
    for path in modules():
        text = path.read_text(encoding="utf-8")
        parts = path.relative_to(PACKAGE).parts
        per_package["syncd" if len(parts) == 1 else f"syncd/{'/'.join(parts[:-1])}"] += 1
        tree = ast.parse(text)
        functions += [(n, f"{rel(path)}:{name}") for n, name in spans(tree, ast.FunctionDef)]
        classes += [(n, f"{rel(path)}:{name}") for n, name in spans(tree, ast.ClassDef)]
        citations += len(CITATION.findall(text))
        if STATUS_CALL.search(text) and "def ledger_status" not in text:
            status_sites.append(rel(path))
        if is_door(path):
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                for name in names:
                    if name == APP or name.startswith(APP + "."):
                        door_imports[APP] += 1
                    for stage in STAGES:
                        if name == stage or name.startswith(stage + "."):
                            door_imports[stage] += 1
    for path in [*ROOT.joinpath("tests").rglob("*.py"), *ROOT.joinpath("benchmarks").rglob("*.py")]:
        citations += len(CITATION.findall(path.read_text(encoding="utf-8")))
    print("modules per package:")
    for name, count in sorted(per_package.items()):
        print(f"  {name:<24} {count}")
    print(f"longest functions (of {len(functions)}):")
    for n, name in sorted(functions, reverse=True)[: args.top]:
        print(f"  {n:>5}  {name}")
    print(f"largest classes (of {len(classes)}):")
    for n, name in sorted(classes, reverse=True)[: args.top]:
        print(f"  {n:>5}  {name}")
    print("imports of the stages by the doors (cli, console, daemon):")
    for stage in STAGES:
        print(f"  {stage:<14} {door_imports[stage]}")
    print(f"imports of the application layer by the doors: {APP} {door_imports[APP]}")
    print(
        f"status assemblies (modules calling ledger_status): {len(status_sites)}"
        + (f" ({', '.join(status_sites)})" if status_sites else "")
    )
    print(f'"SPEC §" citations in syncd/, tests/ and benchmarks/: {citations}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
