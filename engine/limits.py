"""A wall-clock bound on deciding one order.

The allocator's work budget (engine.allocator.WORK_LIMIT) keeps a single
search small (settling ties between equal plans included, so that a search
ends on its budget, the same on any machine, and the clock is only a safety
net), but one order may run many searches (the plan, then one per node in
"why not" and in the explanation of a held order), and the rules alone can
cost rules x lines x nodes
condition tests per restart of the agenda. Measured before this bound
existed: a 100-line order on a 200-node network took 98-137 s, and a
500-line order with a 101-rule playbook that keeps setting a fact took 48 s.
Inside POST /orders that time is spent holding the database's write lock.

`engine.route` runs each order under `deadline(seconds)`:

* the rule matcher and the fact gathering call `check()`; past the
  deadline they raise OutOfTime and the order gets status "error" with a
  message that says so (nothing is reserved; a 422 over HTTP);
* the allocator's searches treat `expired()` like a spent work budget: they
  stop and the best plan found so far is used; the "why not" comparisons
  that have not run yet are skipped.

The default is TIME_LIMIT seconds; `steve serve` takes it from
STEVE_ROUTE_TIME_LIMIT_MS. The context variable keeps concurrent orders in
different threads apart.
"""

from __future__ import annotations

import contextvars
import math
import time

TIME_LIMIT = 2.0            # seconds per order, unless configured or passed to engine.route

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("steve_deadline", default=None)
_clock = time.monotonic


class OutOfTime(Exception):
    """Deciding the order passed its deadline; `stage` says where."""

    def __init__(self, stage: str):
        super().__init__(stage)
        self.stage = stage


def configure(seconds: float | None) -> None:
    """Set the default limit for this process (None or 0: no limit)."""
    global TIME_LIMIT
    if seconds is not None and (math.isnan(seconds) or seconds < 0):
        raise ValueError(f"a time limit must be a positive number of seconds, not {seconds!r}")
    TIME_LIMIT = seconds or math.inf


def deadline(seconds: float | None) -> "_Deadline":
    """Run the block with a deadline `seconds` from now (None, 0 or inf: none).
    A deadline set further out does not extend one already running.

        with limits.deadline(2.0):
            ...
    """
    return _Deadline(seconds)


class _Deadline:
    """The context manager deadline() returns (a class: engine.route enters
    one per order, and contextlib's generator-based one costs more)."""

    __slots__ = ("seconds", "token")

    def __init__(self, seconds: float | None):
        self.seconds, self.token = seconds, None

    def __enter__(self) -> None:
        seconds = self.seconds
        if not seconds or math.isinf(seconds):
            return
        end = _clock() + seconds
        outer = _deadline.get()
        self.token = _deadline.set(end if outer is None else min(end, outer))

    def __exit__(self, *exc) -> None:
        if self.token is not None:
            _deadline.reset(self.token)
            self.token = None


def current() -> float:
    """The running deadline on the monotonic clock (math.inf: none), for hot
    loops that compare `time.monotonic()` with it themselves."""
    end = _deadline.get()
    return math.inf if end is None else end


def expired() -> bool:
    """True once the running deadline has passed."""
    end = _deadline.get()
    return end is not None and _clock() > end


def check(stage: str) -> None:
    """Raise OutOfTime(stage) once the running deadline has passed."""
    end = _deadline.get()
    if end is not None and _clock() > end:
        raise OutOfTime(stage)
