"""Two of Beam's fixed costs removed, each checked by tests/transforms/test_beam_patches.py
(rerun it on a Beam upgrade; the pin is in pyproject.toml).

**Spec lookups.** The state and timer specs of a DoFn are looked up once per DoFn kind instead
of six to ten times per ParDo. Beam's ``userstate.get_dofn_specs`` walks every method of a DoFn
and inspects its signature; it runs when a ParDo is applied, when the graph is translated and
again in every bundle processor a worker builds (a seeds run of our graph called it 960 times:
1.4 of its 6.3 s). The answer
depends only on the DoFn's class and, for a wrapped callable (``beam.Map``, ``FlatMap``...), on
that callable's signature, so it is cached under those: the class, and the callable (held
weakly, so the callables of finished pipelines, e.g. a stream's earlier rounds, are not kept).
A DoFn that carries methods of its own on the instance is never cached.

**Subprocess teardown.** A DoFn run in a subprocess (``with_exception_handling(use_subprocess=
True)``, the extraction's ``subprocess`` isolation) ends its pool by killing the child and then
sleeping a fixed second before checking it is gone; the local streaming runner tears DoFns down
after every bundle, so a stream round of the seeds spent 4 of its 10 s asleep there. The child
is now waited for (polled, at most the same second) instead of slept past.

``install()`` is idempotent and runs when ``news_ingest.transforms`` is imported, which a worker
process does before it unpickles any of our DoFns.
"""

from __future__ import annotations

import time
import types
import weakref
from collections.abc import Callable
from typing import Any

from apache_beam.transforms import core, userstate

Specs = tuple[set[Any], set[Any]]

_UNCACHED: Callable[[Any], Specs] = userstate.get_dofn_specs
_by_class: dict[type, Specs] = {}
_by_callable: dict[type, weakref.WeakKeyDictionary[Any, Specs]] = {}


def _copy(specs: Specs) -> Specs:
    return set(specs[0]), set(specs[1])


def cached_dofn_specs(dofn: Any) -> Specs:
    """``userstate.get_dofn_specs`` with its answer cached per DoFn kind (see the module)."""
    if any(isinstance(v, types.MethodType) for v in getattr(dofn, "__dict__", {}).values()):
        return _UNCACHED(dofn)
    kind = type(dofn)
    if not isinstance(dofn, core.CallableWrapperDoFn):
        specs = _by_class.get(kind)
        if specs is None:
            specs = _by_class[kind] = _UNCACHED(dofn)
        return _copy(specs)
    try:
        fn = dofn._process_argspec_fn()
        table = _by_callable.setdefault(kind, weakref.WeakKeyDictionary())
        specs = table.get(fn)
    except TypeError:  # a callable that cannot be weakly referenced or hashed
        return _UNCACHED(dofn)
    if specs is None:
        specs = table[fn] = _UNCACHED(dofn)
    return _copy(specs)


def terminate_pool(self: Any) -> None:
    """``_SubprocessDoFn._terminate_pool``: kill the pool's children and wait until they are
    gone (at most a second in all, then SIGTERM any left), instead of always sleeping one."""
    pool = self._pool
    self._pool = None
    if pool is None:
        return
    processes = list(pool._processes.values())
    pool.shutdown(wait=False)
    for process in processes:
        if process.is_alive():
            process.kill()
    # Polled, not joined: the pool's own management thread may be reaping the same children.
    deadline = time.monotonic() + 1.0
    for process in processes:
        while process.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if process.is_alive():
            process.terminate()


def install() -> None:
    """Put both in place of Beam's (every caller looks them up on the module or class)."""
    userstate.get_dofn_specs = cached_dofn_specs
    core._SubprocessDoFn._terminate_pool = terminate_pool  # type: ignore[method-assign]
