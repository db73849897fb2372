"""ZeroGPU: the start-up report a ZeroGPU Space must send before hfgate binds its port.

On ZeroGPU hardware (``SPACES_ZERO_GPU`` set), Hugging Face stops a Space whose process sends no
start-up report ("No @spaces.GPU function detected during startup"). The ``spaces`` package,
which Hugging Face installs in every Gradio Space, sends it (``POST
{SPACES_ZERO_DEVICE_API_URL}/startup-report``) from ``spaces.zero.startup()``, which it runs
from gradio's ``launch()`` just before the server binds, and only when a function is declared
with ``@spaces.GPU``. hfgate never calls ``launch()``: ``hfgate.space.run`` replaces the Python
process with the gateway, which binds the port at once, and the backend is imported later, in
uvicorn. So the launcher does first what ``launch()`` would have done:

1. It finds the ``@spaces.GPU`` functions in the backend module(s) ``run`` names (``gpu=``,
   default: the app's own module) by reading their source, without importing them: importing a
   backend loads its models, which belongs in the uvicorn child, once.
2. If there are some, it imports ``spaces`` (which imports gradio and torch and starts
   nothing), declares one function of its own with ``@spaces.GPU`` so that ``startup()`` has
   one to report (the report names none: it says that the Space has GPU functions, which the
   backend's are), and calls ``spaces.zero.startup()``, the code ``launch()`` runs.
3. ``run`` then execs hfgate with the environment it was given, ``SPACES_ZERO_*`` included, so
   that the backend's own ``import spaces`` in uvicorn finds the device API and its
   ``@spaces.GPU`` functions are scheduled as they would be under gradio.

With nothing declared it writes one line saying what ZeroGPU requires, and hfgate starts all the
same (Hugging Face stops the Space soon after). On other hardware it does nothing, and
``spaces`` is not imported. Tested against a stand-in of the device API and of the ``spaces``
package (e2e/zerogpu_test.go); no live ZeroGPU Space has been tried (docs/deploy-hf-spaces.md).
"""

import ast
import importlib
import os
import time

__all__ = ["ZeroGPUError", "enabled", "gpu_functions", "module_file", "startup"]

# What ZeroGPU says when it stops a Space that never reported.
NO_GPU_MESSAGE = "No @spaces.GPU function detected during startup"


class ZeroGPUError(Exception):
    """A problem with the ZeroGPU start-up, said in one line."""


def enabled(environ):
    """Whether this is ZeroGPU hardware, read as the spaces package reads SPACES_ZERO_GPU."""
    return environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")


def module_file(backend_dir, module):
    """The source file of the dotted module in backend_dir, or None."""
    base = os.path.join(backend_dir, *module.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def gpu_functions(source, filename="<backend>"):
    """The names of the functions that source declares with spaces.GPU, in order: decorated
    (``@spaces.GPU``, ``@spaces.GPU(duration=60)``, ``@GPU`` after ``from spaces import GPU``,
    under any alias) or wrapped (``f = spaces.GPU(g)``: the wrapped name, or ``<expression>``).
    Raises SyntaxError for source that does not parse."""
    tree = ast.parse(source, filename)
    modules, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "spaces")
        elif isinstance(node, ast.ImportFrom) and node.module == "spaces" and not node.level:
            names.update(a.asname or a.name for a in node.names if a.name == "GPU")

    def is_gpu(expr):
        if isinstance(expr, ast.Call):  # @spaces.GPU(duration=60)
            expr = expr.func
        if isinstance(expr, ast.Attribute):
            return expr.attr == "GPU" and isinstance(expr.value, ast.Name) and expr.value.id in modules
        return isinstance(expr, ast.Name) and expr.id in names

    found, decorators = [], set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            decorators.update(id(d) for d in node.decorator_list)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(is_gpu(d) for d in node.decorator_list):
            found.append((node.lineno, node.name))
        elif isinstance(node, ast.Call) and id(node) not in decorators and is_gpu(node.func) and node.args:
            # spaces.GPU(g), or spaces.GPU(duration=5)(g): the call whose argument is the function.
            arg = node.args[0]
            found.append((node.lineno, arg.id if isinstance(arg, ast.Name) else "<expression>"))
    return [name for _, name in sorted(found)]


def _scan(backend_dir, modules):
    """{relative file: [function names]} for the modules, or raises ZeroGPUError."""
    out = {}
    for module in modules:
        path = module_file(backend_dir, module)
        if path is None:
            raise ZeroGPUError("gpu names the module %s, which is not in %s (looked for %s.py and %s/__init__.py)"
                               % (module, backend_dir, module.replace(".", "/"), module.replace(".", "/")))
        try:
            with open(path, encoding="utf-8") as f:
                out[os.path.relpath(path, os.path.dirname(backend_dir))] = gpu_functions(f.read(), path)
        except (OSError, UnicodeDecodeError) as e:
            raise ZeroGPUError("cannot read %s: %s" % (path, e)) from None
        except SyntaxError as e:
            raise ZeroGPUError("%s does not parse (line %s: %s)" % (path, e.lineno, e.msg)) from None
    return out


def startup(app, backend_dir, gpu, environ, log, clock=time.monotonic):
    """Sends ZeroGPU's start-up report for the backend when this is ZeroGPU hardware and the
    backend declares @spaces.GPU functions; says what is missing in one line (log) when it
    declares none. gpu: the backend modules that declare them (a name, a list, or None for the
    app's own module). Raises ZeroGPUError when the report cannot be sent.

    Off ZeroGPU it only checks that the gpu modules exist, so that a typo shows on a laptop.
    """
    if isinstance(gpu, str):
        gpu = [gpu]
    declared = bool(gpu)
    modules = list(gpu) if gpu else [app.split(":", 1)[0]]
    if not enabled(environ):
        if declared:
            for module in modules:
                if module_file(backend_dir, module) is None:
                    raise ZeroGPUError("gpu names the module %s, which is not in %s" % (module, backend_dir))
        return
    found = _scan(backend_dir, modules)
    functions = [f for names in found.values() for f in names]
    where = ", ".join(sorted(found))
    if not functions:
        if not declared:
            log('this Space runs on ZeroGPU hardware, which stops a Space that declares no @spaces.GPU function at '
                'start-up ("%s"), and %s declares none: decorate the backend\'s GPU functions with @spaces.GPU '
                '(import spaces) and, when they are not in the app\'s module, name theirs: hfgate.space.run("%s", '
                'gpu="models"); or run the Space on CPU hardware' % (NO_GPU_MESSAGE, where, app))
            return
        log("ZeroGPU: no @spaces.GPU function found by reading %s; reporting all the same, as gpu= declares them" % where)
    start = clock()
    _report()
    log("ZeroGPU: start-up report sent in %.1fs, before hfgate binds the port, for %s (%s)"
        % (clock() - start, where, ", ".join(functions) or "declared by gpu="))


def _report():
    """What gradio's launch() does through the spaces package: spaces.zero.startup(), with one
    @spaces.GPU function declared in this process (spaces reports only when there is one)."""
    try:
        import spaces
    except Exception as e:  # noqa: BLE001 (ImportError, or spaces' own refusal, such as its CUDA check)
        raise ZeroGPUError("cannot import the spaces package (%s: %s); Hugging Face installs it in Gradio "
                           "Spaces: add spaces to requirements.txt" % (type(e).__name__, e)) from None

    def hfgate_backend_gpu_functions():
        """Stands for the backend's @spaces.GPU functions in this process; never called."""

    try:
        spaces.GPU(hfgate_backend_gpu_functions)
        # startup() exists only on ZeroGPU hardware; older packages have only the client's call.
        report = getattr(importlib.import_module("spaces.zero"), "startup", None)
        if report is None:
            report = getattr(importlib.import_module("spaces.zero.client"), "startup_report", None)
        if report is None:
            raise ZeroGPUError("the spaces package has neither spaces.zero.startup() nor "
                               "spaces.zero.client.startup_report() to send the start-up report with")
        report()
    except ZeroGPUError:
        raise
    except Exception as e:  # noqa: BLE001 (spaces raises RuntimeError and gradio's Error)
        raise ZeroGPUError("the ZeroGPU start-up report failed (%s: %s)" % (type(e).__name__, e)) from None
