"""The CPU reference's thread pool: pieces of work on one thread per core, BLAS held to one
thread each while they run.

numpy cannot set BLAS's thread count, and BLAS's own threads on top of a pool oversubscribe the
cores (docs/perf-notes.md v15), so the pool runs only where threadpoolctl is installed. Without
it, or for small calls, the pieces run in order on the calling thread and BLAS threads each
product itself. BLAS's thread count is process-wide: one pooled call runs at a time, and a child
forked during one gets its pool and BLAS's threads back. While a pooled call runs, BLAS work
in the process's other threads runs on one thread too. threadpoolctl lets only one live thread
change a pthreads OpenBLAS's count (it ignores the others), so one thread of ours does every
change.
"""
import concurrent.futures as cf
import contextvars
import os
import threading

__all__ = ["cores", "describe", "run"]

#: Below this many multiply-adds (or element copies) a call runs on the calling thread only.
MIN_WORK = 1 << 22

_state = threading.Lock()     # guards the pool and the controller, both made on first use
_section = threading.Lock()   # held through a pooled call
_pool = None
_setter = None                # the one thread that sets BLAS's thread count
_blas = None                  # threadpoolctl's ThreadpoolController; False without threadpoolctl
_limit = None                 # the BLAS limit in force during a pooled call
_PREFIX = "cupy_bsparse_cpu"  # the pool's thread names


def cores():
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
    n = cores()
    with _state:
        blas = _controller()
    if n > 1 and blas:
        return f"{n} cores: a thread per core, BLAS at one thread each"
    if n > 1:
        return (f"{n} cores: products one after another, each threaded by BLAS; install "
                "threadpoolctl for a thread per core")
    return "1 core"


def run(tasks, work):
    """Call every task (callables without arguments, writing disjoint outputs); ``work``
    (multiply-adds or element copies) decides whether the pool pays. Returns when all have
    finished; the first task's exception, if any, is raised after the others have finished
    (an interrupt cancels those not yet started). Tasks see the caller's context (numpy's
    errstate). Calls from within a task run in order."""
    global _pool, _setter, _limit
    workers = cores()
    pooled = (workers > 1 and len(tasks) > 1 and work >= MIN_WORK
              and not threading.current_thread().name.startswith(_PREFIX))
    if pooled:
        with _state:
            blas = _controller()
            if blas and _pool is None:
                _pool = cf.ThreadPoolExecutor(workers, _PREFIX)
                _setter = cf.ThreadPoolExecutor(1, _PREFIX + "_blas")
            pool, setter = _pool, _setter
        if blas:
            with _section:
                _limit = setter.submit(blas.limit, limits=1, user_api="blas").result()
                futures = []
                try:
                    futures = [pool.submit(contextvars.copy_context().run, t) for t in tasks]
                    cf.wait(futures)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    cf.wait(futures)
                    raise
                finally:
                    setter.submit(_limit.restore_original_limits).result()
                    _limit = None
            for f in futures:
                f.result()
            return
    for t in tasks:
        t()


def _reset_in_child():
    """After fork: the pool's threads and the locks' holders are not in the child."""
    global _state, _section, _pool, _setter, _limit
    _state, _section, _pool, _setter = threading.Lock(), threading.Lock(), None, None
    if _limit is not None:   # forked while another thread was in a pooled call (the setter
        # thread is not in the child, so this thread may set the count)
        _limit.restore_original_limits()
        _limit = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
