"""Checks that ``module:attribute`` names something in the backend, without importing it.

``python -m hfgate.space new --app main:ap`` and ``hfgate.space.run("main:ap")`` would write or
start a Space whose backend can never start: uvicorn exits with ``Attribute "ap" not found``,
again and again. Importing the module to look would run the user's code (which may load a
model), so the module's source is parsed instead (``ast``) and its top-level bindings read:
assignments, ``def``/``class``, imports (``from x import app``), ``with``/``for`` targets,
``:=``, names made global from a function. What the source cannot tell (``from x import *``,
``globals()``, a module ``__getattr__``, ``sys.modules``, ``exec``/``eval``, a file that does
not parse with this Python) makes the check say nothing rather than guess.

Standard library only, like the rest of the package.
"""

import ast
import difflib
import os

__all__ = ["module_path", "top_level_names", "problem"]

# Names whose use can bind module globals the source does not show.
_DYNAMIC_NAMES = {"globals", "exec", "eval", "__import__"}
# Nodes whose bodies are scopes of their own: what they bind is not the module's.
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def module_path(backend_dir, module):
    """The source file of ``module`` (dotted) inside ``backend_dir``, or None: ``a/b.py`` or
    ``a/b/__init__.py``, as uvicorn's ``--app-dir`` finds it."""
    rel = module.replace(".", os.sep)
    for candidate in (rel + ".py", os.path.join(rel, "__init__.py")):
        path = os.path.join(backend_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def top_level_names(path):
    """The names the module at ``path`` binds at its top level, or None when its source cannot
    tell (see the module's doc) or cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in _DYNAMIC_NAMES:
            return None
        if (isinstance(node, ast.Attribute) and node.attr == "modules"
                and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            return None  # sys.modules[__name__] = ..., setattr(sys.modules[...], ...)
        if isinstance(node, ast.Global):
            # Assigned in a function that may run at import (a create_app() that sets it).
            names.update(node.names)
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            if not isinstance(node, ast.Lambda):
                if node.name == "__getattr__":
                    return None  # a module __getattr__ answers any name
                names.add(node.name)
            continue
        names.update(_binds(node))
        stack.extend(ast.iter_child_nodes(node))
    return names


def _binds(node):
    """The names one node binds in the scope it runs in."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    if isinstance(node, ast.Import):
        return [a.asname or a.name.split(".", 1)[0] for a in node.names]
    if isinstance(node, ast.ImportFrom):
        out = [a.asname or a.name for a in node.names]
        if node.level and node.module:
            # In a package's __init__.py, "from .main import app" also sets the attribute main.
            out.append(node.module.split(".", 1)[0])
        return out
    if isinstance(node, ast.ExceptHandler) and node.name:
        return [node.name]
    # match statements (Python 3.10+): case {"k": app}, case [*rest], case {**rest}
    for kind, field in (("MatchAs", "name"), ("MatchStar", "name"), ("MatchMapping", "rest")):
        cls = getattr(ast, kind, None)
        if cls is not None and isinstance(node, cls) and getattr(node, field):
            return [getattr(node, field)]
    return []


def problem(backend_dir, app):
    """One line saying why ``app`` (``module:attribute``) cannot be found in ``backend_dir``,
    or None when it is there or the source cannot tell. A module that is not in
    ``backend_dir`` is the caller's to judge (it may be installed)."""
    module, _, attr = app.partition(":")
    attr = attr.split(".", 1)[0]  # uvicorn takes "main:app.api"; the first name must exist
    path = module_path(backend_dir, module)
    if path is None:
        return None
    names = top_level_names(path)
    if names is None or attr in names:
        return None
    if os.path.basename(path) == "__init__.py":
        pkg = os.path.dirname(path)
        if os.path.exists(os.path.join(pkg, attr + ".py")) or os.path.isdir(os.path.join(pkg, attr)):
            return None  # a submodule: an attribute once anything imports it
    line = '%s: %s has no top-level name "%s"' % (app, path, attr)
    close = difflib.get_close_matches(attr, sorted(n for n in names if not n.startswith("__")), n=1)
    if close:
        line += ' (did you mean "%s"?)' % close[0]
    return line
