"""One background worker for the app's long steps: jobs run one at a time, in the order asked, and can
be cancelled (queued ones never start; a running one stops at its next check and keeps what it finished).

A job is a function ``fn(job)`` that reports with :meth:`Job.report` and polls :attr:`Job.cancelled`.
The page never blocks on a job: it submits and shows :meth:`JobRunner.describe`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from see3d.errors import See3DError
from see3d.log import get_logger

log = get_logger(__name__)

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"


@dataclass
class Job:
    """A step of work. ``state`` goes queued -> running -> done | cancelled | failed (or queued -> cancelled).

    Attributes:
        name: what the page shows ("generate", ...).
        progress: fraction done in [0, 1].
        message: the latest one-line status (or the error when failed).
        result: what ``fn`` returned.
    """

    name: str
    fn: Callable[[Job], object]
    state: str = QUEUED
    progress: float = 0.0
    message: str = ""
    result: object = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    _on_change: Callable[[Job], None] | None = field(default=None, repr=False)

    @property
    def cancelled(self) -> bool:
        """Whether cancel was asked (the job should stop at its next safe point)."""
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (any end state); False on timeout."""
        return self._finished.wait(timeout)

    def report(self, progress: float | None = None, message: str | None = None) -> None:
        if progress is not None:
            self.progress = float(min(max(progress, 0.0), 1.0))
        if message is not None:
            self.message = message
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self)
            except Exception:  # a page update failing must not kill the job
                log.debug("job update callback failed", exc_info=True)


class JobRunner:
    """A FIFO of :class:`Job` run by one daemon thread.

    Args:
        on_change: called (from the worker or the submitting thread) whenever a job changes state or reports.
    """

    def __init__(self, on_change: Callable[[Job], None] | None = None):
        self._on_change = on_change
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: list[Job] = []  # queued, in order
        self.current: Job | None = None
        self.history: list[Job] = []
        self._thread = threading.Thread(target=self._run, name="see3d-app-jobs", daemon=True)
        self._thread.start()

    def submit(self, name: str, fn: Callable[[Job], object]) -> Job:
        """Queue ``fn(job)``; it runs after the jobs before it."""
        job = Job(name, fn, _on_change=self._on_change)
        with self._lock:
            self._pending.append(job)
        job.report(0.0, "waiting for " + self.current.name if self.current is not None else "starting")
        self._queue.put(job)
        return job

    @property
    def queued(self) -> list[Job]:
        with self._lock:
            return list(self._pending)

    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self.queued)

    def cancel_all(self) -> None:
        """Cancel the running job and every queued one."""
        for job in [self.current, *self.queued]:
            if job is not None:
                job.cancel()

    def describe(self) -> str:
        """One line for the page: the running job with its progress, then what waits."""
        cur = self.current
        parts = [] if cur is None else [f"**{cur.name}** {100 * cur.progress:.0f}% {cur.message}".strip()]
        q = self.queued
        if q:
            parts.append("queued: " + ", ".join(j.name for j in q))
        if not parts:
            last = self.history[-1] if self.history else None
            return "idle" if last is None else f"idle (last: {last.name} {last.state}{': ' + last.message if last.message else ''})"
        return " · ".join(parts)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel everything and end the worker thread."""
        self.cancel_all()
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._pending.remove(job)
                self.current = job
            if job.cancelled:
                job.state = CANCELLED
                job.message = "cancelled before it started"
            else:
                job.state, job.message = RUNNING, ""
                job._changed()
                t0 = time.monotonic()
                try:
                    job.result = job.fn(job)
                    job.state = CANCELLED if job.cancelled else DONE
                    if job.state == DONE:
                        job.progress = 1.0
                    log.info("job %s %s in %.1f s", job.name, job.state, time.monotonic() - t0)
                except See3DError as e:  # bad input: one clear line on the page
                    job.state, job.message = FAILED, str(e)
                    log.warning("job %s failed: %s", job.name, e)
                except Exception as e:  # a bug: the page shows the line, the log has the traceback
                    job.state, job.message = FAILED, f"{type(e).__name__}: {e}"
                    log.exception("job %s failed", job.name)
            with self._lock:
                self.current = None
                self.history.append(job)
            job._finished.set()
            job._changed()
