"""The CPU reference's thread pool: pieces of work on one thread per core, BLAS held to one
thread each while they run.

numpy cannot set BLAS's thread count, and BLAS's own threads on top of a pool oversubscribe the
cores (docs/perf-notes.md v15), so the pool runs only where threadpoolctl is installed. Without
it, or for small calls, the pieces run in order on the calling thread and BLAS threads each
product itself. BLAS's thread count is process-wide: one pooled call runs at a time, and a child
forked during one gets its pool and BLAS's threads back.
"""
import concurrent.futures as cf
import os
import threading

__all__ = ["describe", "run"]

#: Below this many multiply-adds (or element copies) a call runs on the calling thread only.
MIN_WORK = 1 << 22

_state = threading.Lock()     # guards the pool and the controller, both made on first use
_section = threading.Lock()   # held through a pooled call
_pool = None
_blas = None                  # threadpoolctl's ThreadpoolController; False without threadpoolctl
_limit = None                 # the BLAS limit in force during a pooled call


def _cores():
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _controller():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController()
        except ImportError:
            _blas = False
    return _blas


def describe():
    """How large products run here, in words (the bench prints it with the device)."""
    cores = _cores()
    with _state:
        blas = _controller()
    if cores > 1 and blas:
        return f"{cores} cores: a thread per core, BLAS at one thread each"
    if cores > 1:
        return (f"{cores} cores: products one after another, each threaded by BLAS (install "
                "threadpoolctl for a thread per core)")
    return "1 core"


def run(tasks, work):
    """Call every task (callables without arguments, writing disjoint outputs); ``work``
    (multiply-adds or element copies) decides whether the pool pays. Returns when all have
    finished; the first task's exception, if any, is raised after the others have finished."""
    global _pool, _limit
    workers = _cores()
    if workers > 1 and len(tasks) > 1 and work >= MIN_WORK:
        with _state:
            blas = _controller()
            if blas and _pool is None:
                _pool = cf.ThreadPoolExecutor(workers, "cupy_bsparse_cpu")
            pool = _pool
        if blas:
            with _section:
                _limit = blas.limit(limits=1, user_api="blas")
                try:
                    futures = [pool.submit(t) for t in tasks]
                    cf.wait(futures)
                finally:
                    _limit.restore_original_limits()
                    _limit = None
            for f in futures:
                f.result()
            return
    for t in tasks:
        t()


def _reset_in_child():
    """After fork: the pool's threads and the locks' holders are not in the child."""
    global _state, _section, _pool, _limit
    _state, _section, _pool = threading.Lock(), threading.Lock(), None
    if _limit is not None:   # forked while another thread was in a pooled call
        _limit.restore_original_limits()
        _limit = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
