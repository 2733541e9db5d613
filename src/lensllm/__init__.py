"""lensllm: choose which LLM to fine-tune from small fine-tuning runs and scaling laws.

The Python API (docs/api.md): :func:`fit`, :func:`plan`, :func:`select` and :func:`bench`,
returning :class:`FitResult`, :class:`PlanResult`, :class:`SelectResult` and
:class:`BenchResult`. They load on first use, so ``import lensllm`` stays light.

``lensllm.bench`` is both the package of loss tables and metrics and the API call:
``lensllm.bench(...)`` runs :func:`lensllm.api.bench`, ``lensllm.bench.load_table`` is the
package's function (the package module is made callable when it is imported).

The numeric core (:mod:`lensllm.laws`, :mod:`lensllm.bench`, :mod:`lensllm.selection`)
imports without torch. Fine-tuning (:mod:`lensllm.finetune`), NTK features
(:mod:`lensllm.ntk`) and real runs (:func:`select`) need the ``finetune`` extra.
"""

from __future__ import annotations

import sys
import types

from lensllm._version import __version__

_API = ("fit", "plan", "select", "bench", "FitResult", "PlanResult", "SelectResult",
        "BenchResult")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """The API's names, imported from :mod:`lensllm.api` on first use."""
    if name == "bench":
        import lensllm.bench  # the package, made callable by _Package.__setattr__

        return sys.modules["lensllm.bench"]
    if name in _API:
        from lensllm import api

        return getattr(api, name)
    raise AttributeError(f"module 'lensllm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


class _CallableBench(types.ModuleType):
    """The :mod:`lensllm.bench` package, callable as :func:`lensllm.api.bench`."""

    def __call__(self, *args, **kwargs):
        from lensllm.api import bench

        return bench(*args, **kwargs)


class _Package(types.ModuleType):
    """The ``lensllm`` package: makes the ``bench`` subpackage callable when the import
    system attaches it here, so ``lensllm.bench(...)`` is the API call."""

    def __setattr__(self, name, value):
        if name == "bench" and type(value) is types.ModuleType:
            value.__class__ = _CallableBench
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
