"""Step closures and per-device contexts (after `torch._lazy`'s, with its traps fixed).

    >>> import numpy as np, numlazy as nl
    >>> loss = nl.sum(nl.asarray(np.arange(4.0)))
    >>> nl.add_step_closure(lambda l: print("loss", float(l)), args=(loss,))
    >>> nl.mark_step()                    # the step computes `loss`, then the closure runs
    loss 6.0

A synchronous closure runs at the end of the next `mark_step` of its device, in the order
added, after the step's results exist; the pending arrays among its arguments are computed by
that step. If one raises, the exception propagates from `mark_step` (whose arrays are already
computed) and the closures after it stay queued for the next step: none is lost. A closure
added while closures run (by a closure) runs at the next step, not the current one.

An asynchronous closure (`run_async=True`) runs on the device's worker thread, in order. Its
queue is bounded (`NUMLAZY_MAX_ASYNC_QUEUE`): a full queue makes the submitter wait for the
worker. A closure's exception never kills the worker and is never lost: it is re-raised, as
the `__cause__` of a `RuntimeError`, at the next `mark_step`, `wait_device_ops` or closure
submission on that device (LTC drops it, or deadlocks the next submission behind a dead
worker). An async closure may add closures and run steps, but not wait for its own worker
(`wait_device_ops` there raises instead of deadlocking). Workers are daemon threads that stop
when idle, so they never keep Python from exiting; what is still queued or unreported when
Python exits is reported on stderr (call `nl.wait_device_ops()` before exiting to run it).
"""
from __future__ import annotations

import atexit
import collections
import sys
import threading
import traceback
from typing import Callable

from . import config
from .device import Device, DeviceLike, parse

IDLE_SECONDS = 1.0          # an idle worker thread stops after this; the next closure restarts it


class AsyncClosureError(RuntimeError):
    """An asynchronous step closure raised; the original exception is the `__cause__`."""


class _Worker:
    """One device's asynchronous closures: a bounded FIFO drained by a daemon thread."""

    def __init__(self, name: str):
        self._name = name
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._unfinished = 0
        self._errors: list = []
        self._thread = None

    def submit(self, fn, args) -> None:
        with self._cond:
            self._raise_error()
            # The worker itself (a closure that adds closures) never waits for room: only it
            # could make room.
            while len(self._queue) >= config.get("max_async_queue") and not self.on_worker():
                self._ensure_thread()        # a dead worker is replaced, never waited on
                self._cond.wait(0.05)
                self._raise_error()
            self._queue.append((fn, args))
            self._unfinished += 1
            self._ensure_thread()
            self._cond.notify_all()

    def on_worker(self) -> bool:
        return self._thread is threading.current_thread()

    def wait(self) -> None:
        """Until every submitted closure has finished; then raise a closure's error, if any."""
        if self.on_worker():
            raise RuntimeError(f"an asynchronous step closure on {self._name} waited for the "
                               f"asynchronous closures of {self._name}, its own among them: "
                               f"that never finishes; wait outside the closure instead")
        with self._cond:
            while self._unfinished:
                self._ensure_thread()
                self._cond.wait(0.05)
            self._raise_error()

    def raise_error(self) -> None:
        with self._cond:
            self._raise_error()

    @property
    def has_error(self) -> bool:
        return bool(self._errors)

    def leftovers(self) -> tuple:
        """(closures not finished, errors not yet reported): what exiting now would lose."""
        with self._cond:
            return self._unfinished, list(self._errors)

    def _raise_error(self) -> None:
        if not self._errors:
            return
        errors, self._errors = self._errors, []
        more = f" ({len(errors) - 1} later closure(s) also failed)" if len(errors) > 1 else ""
        raise AsyncClosureError(f"an asynchronous step closure on {self._name} raised "
                                f"{errors[0]!r}{more}") from errors[0]

    def _ensure_thread(self) -> None:
        if self._queue and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name=f"numlazy-closures-{self._name}")
            self._thread.start()

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                if self._thread is not me:       # replaced: one worker keeps the order
                    return
                if not self._queue:
                    self._cond.wait(IDLE_SECONDS)
                if not self._queue or self._thread is not me:
                    if self._thread is me:
                        self._thread = None
                    return
                fn, args = self._queue.popleft()
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - reported at the next boundary
                with self._cond:
                    self._errors.append(exc)
            finally:
                with self._cond:
                    self._unfinished -= 1
                    self._cond.notify_all()


class DeviceContext:
    """Per-device state shared by every thread: its step closures and its async worker."""

    def __init__(self, device: Device):
        self.device = device
        self._lock = threading.Lock()
        self._closures: list = []           # (fn, args, run_async), in order added
        self.worker = _Worker(str(device))

    def __repr__(self):
        return f"DeviceContext({str(self.device)!r}, {len(self._closures)} closure(s) queued)"

    @property
    def busy(self) -> bool:
        """Whether a step on this device has closure work to do (checked every step)."""
        return bool(self._closures) or self.worker.has_error

    def add(self, fn, args, run_async) -> None:
        self.worker.raise_error()
        with self._lock:
            self._closures.append((fn, tuple(args), run_async))

    def pending_arrays(self) -> list:
        """The pending arrays among the queued closures' arguments (one level of nesting)."""
        from ._array import Array
        with self._lock:
            found = []
            for _, args, _ in self._closures:
                for a in args:
                    items = a.values() if isinstance(a, dict) else \
                        a if isinstance(a, (list, tuple)) else (a,)
                    found += [x for x in items
                              if isinstance(x, Array) and not x._node.realized]
            return found

    def run(self) -> None:
        """Run the queued closures in order; on an exception the rest stay queued."""
        with self._lock:
            todo, self._closures = self._closures, []
        for i, (fn, args, run_async) in enumerate(todo):
            try:
                if run_async:
                    self.worker.submit(fn, args)
                else:
                    fn(*args)
            except BaseException:
                with self._lock:
                    self._closures[:0] = todo[i + 1:]
                raise


_contexts: dict[Device, DeviceContext] = {}
_contexts_lock = threading.Lock()


def get_device_context(device: DeviceLike = None) -> DeviceContext:
    """The context of `device` (default device if None), created on first use; thread-safe:
    every thread gets the same object. An unknown device type or a missing device raises."""
    d = parse(device)
    ctx = _contexts.get(d)
    if ctx is None:
        from .registry import backend_for
        backend_for(d)                       # raises, naming the registered types
        with _contexts_lock:
            ctx = _contexts.setdefault(d, DeviceContext(d))
    return ctx


def existing_context(device: Device):
    """The device's context if one was ever created (a dict lookup: on every step)."""
    return _contexts.get(device)


def all_contexts() -> list:
    with _contexts_lock:
        return list(_contexts.values())


def add_step_closure(fn: Callable, args=(), run_async: bool = False) -> None:
    """Run `fn(*args)` after the next step of the default device (see the module doc).
    `args` is a tuple or list; the pending arrays in it (and one level down in lists, tuples
    and dicts) are computed by that step. Raises, before queueing, the error of an earlier
    asynchronous closure on that device."""
    if not callable(fn):
        raise TypeError(f"add_step_closure: fn must be callable, got {type(fn).__name__}")
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"add_step_closure: args must be a tuple or list of arguments, got "
                        f"{type(args).__name__} (for one argument write args=(x,))")
    if not isinstance(run_async, bool):
        raise TypeError(f"add_step_closure: run_async must be True or False, got "
                        f"{run_async!r}")
    get_device_context().add(fn, args, run_async)


def run_step_closures() -> None:
    """Run the default device's queued closures now (without a step)."""
    get_device_context().run()


@atexit.register
def _report_at_exit() -> None:
    """Python is exiting: say what the daemon workers will never run or report."""
    for ctx in all_contexts():
        queued = len(ctx._closures)
        unfinished, errors = ctx.worker.leftovers()
        if queued:
            _stderr(f"numlazy: {queued} step closure(s) on {ctx.device} never ran (no step "
                    f"after they were added)")
        if unfinished:
            _stderr(f"numlazy: {unfinished} asynchronous step closure(s) on {ctx.device} had "
                    f"not finished at exit and were dropped; call nl.wait_device_ops() "
                    f"before exiting to run them")
        for exc in errors:
            _stderr(f"numlazy: an asynchronous step closure on {ctx.device} raised, and no "
                    f"later step or wait reported it:")
            traceback.print_exception(exc, file=sys.stderr)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
