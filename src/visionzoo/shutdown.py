"""Ending a visionzoo process with the exit status its run earned, never by a signal at teardown.

A process that ends by returning from its script lets the interpreter tear itself down: Python
threads are joined, ``atexit`` handlers run (MindSpore's own ``ClearResAtexit`` among them, which
releases its resources and finalizes the msrun cluster: the scheduler waits for every worker's
goodbye), then module teardown frees what is left (measured in a finished worker: C++-backed
MindSpore objects such as a Parameter's ``ParamInfo``, in reference cycles), and finally ``exit()``
runs the C++ static destructors while a native thread MindSpore started is still running (the dataset
engine's ``TaskManager::WatchDog``). Those last two steps come after MindSpore's clean-up and race
with it; a finished msrun worker was seen to die there of SIGSEGV (exit -11), which the launcher
reports as a failed job. See ``benchmarks/results/msrun_teardown_probe_*.txt``.

:func:`finish_process` does the same work in an order that is safe, then ends the process itself:

1. flush standard streams (results are printed there);
2. join the non-daemon Python threads;
3. collect garbage, so the run's cells, compiled graphs and datasets are released while MindSpore is
   still whole (the script's ``main`` has returned, so nothing holds them but reference cycles);
4. run the ``atexit`` handlers (dataset iterators, MindSpore's resource clean-up and cluster
   finalization), then ``logging.shutdown()`` (flushes and closes every log file) and flush what
   native code buffered in C stdio;
5. ``os._exit(code)``: no module teardown and no static destructors, so no thread is left racing them.

SIGTERM (a scheduler stopping the job, ``kill``) is a chosen end too: :func:`install_sigterm_handler`
turns it into :class:`Terminated`, which the scripts end with status 143 (128 + 15), not a death by signal.

Every file visionzoo writes (checkpoints, metrics, configs, exports) is complete before this runs:
they are written atomically and closed where they are written.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import sys
import threading
import time
from typing import NoReturn, Optional

__all__ = ["Terminated", "finish_process", "install_sigterm_handler", "TERMINATED_EXIT_CODE"]

#: Exit status of a run stopped by SIGTERM: the shell's convention, 128 + the signal number.
TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (a scheduler or ``kill`` stops the run).

    A ``BaseException`` like ``KeyboardInterrupt``: ``except Exception`` in library code does not swallow it.
    """


#: Seconds a SIGTERM'd process waits for its main thread to stop the run before ending itself.
TERMINATE_GRACE_S = 10.0


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"received signal {signum}")


def _end_if_main_thread_stuck(read_fd: int, grace_s: float) -> None:
    """Watch the signal wake-up pipe; after a SIGTERM, give the main thread ``grace_s`` to end the run.

    Python runs a signal handler in the main thread between bytecodes, so a main thread blocked in
    native code (a collective waiting for a peer that is gone, msrun's scheduler serving the cluster)
    would never see :class:`Terminated`. Then this thread ends the process with the same status.
    """
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if not data:
            return
        if signal.SIGTERM in data:
            time.sleep(grace_s)
            sys.stderr.write(f"terminated (SIGTERM): the run did not stop within {grace_s:g} s; ending the process\n")
            logging.shutdown()
            _flush_stdio()
            os._exit(TERMINATED_EXIT_CODE)


def install_sigterm_handler(grace_s: float = TERMINATE_GRACE_S) -> None:
    """Turn SIGTERM into :class:`Terminated` in the main thread (the script then exits with
    :data:`TERMINATED_EXIT_CODE`), and end the process with that status ``grace_s`` seconds later if
    the main thread is blocked in native code (that watchdog needs the signal wake-up fd, so it is left
    out when the process already has one, e.g. an asyncio loop's). A no-op outside the main thread,
    where Python cannot set signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    if previous != -1:  # someone else's: put it back, and do without the watchdog
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)
        return
    threading.Thread(
        target=_end_if_main_thread_stuck, args=(read_fd, grace_s), name="visionzoo-sigterm", daemon=True
    ).start()


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be written there
            pass


def _stop_idle_pool_workers() -> None:
    """Wake idle ``ThreadPoolExecutor`` workers so that they end, as the interpreter's own shutdown does
    before it joins threads (``concurrent.futures`` registers this with ``threading._register_atexit``).
    Without it a pool that was never shut down (OpenVINO's telemetry starts one on import) is joined forever."""
    pool = sys.modules.get("concurrent.futures.thread")
    stop = getattr(pool, "_python_exit", None)
    if stop is not None:
        stop()


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: what native code (MindSpore's C++) buffered in C stdio, which ``os._exit`` would drop."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to call (not a glibc/musl-style platform)
        pass


def _join_threads(timeout: Optional[float]) -> None:
    _stop_idle_pool_workers()
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread.is_alive():
            thread.join(timeout)


def finish_process(code: int, clean: bool = True) -> NoReturn:
    """End the process with exit status ``code`` after an orderly shutdown (see the module docstring).

    ``clean=False`` skips joining threads, garbage collection and the ``atexit`` handlers: for a failed
    data-parallel rank, whose cluster finalization would wait on peers that are gone (measured: a rank
    whose peer died hung there for 30 s until MindSpore killed it). Logs and standard streams are
    flushed in both cases.
    """
    code = int(code)
    _flush_stdio()
    if clean:
        # a SIGTERM arriving now must not interrupt the clean-up half-way: the run is already decided
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _join_threads(timeout=None)
        gc.collect()
        atexit._run_exitfuncs()  # runs the handlers once, newest first, and clears them, as at exit
    logging.shutdown()
    _flush_stdio()
    _flush_c_stdio()
    os._exit(code)
