"""The camera server's work for one tab: JPEG decode -> stylize -> JPEG encode as a bounded
pipeline (pipeline.py), fed by the tab's newest frame and answering the tab in order.

Newest wins at the entrance: a frame that arrives while the previous one still waits to be
taken replaces it and is counted as dropped, so latency stays bounded by the pipeline's few
slots. The three stages overlap (Pillow and the models release the GIL), so a tab gets frames
at the rate of the slowest stage, not of their sum. A bad frame, a failing style or an
unexpected error becomes an error reply for that frame; the pipeline goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import PalmbrushError
from .pipeline import POLL_S, Pipeline, Stage

log = logging.getLogger("palmbrush.camera")


@dataclass
class Job:
    stamp: float  # the page's capture time, echoed back
    data: bytes  # the frame as the page sent it (JPEG or PNG)
    style: str
    strength: float
    picture: np.ndarray | None = None
    reply: bytes | str | None = None  # the stylized JPEG, or an error message


class Latest:
    """The tab's newest frame, waiting to be taken: newest wins, and a replaced one counts."""

    def __init__(self):
        self._changed = threading.Condition()
        self._job: Job | None = None
        self.closed = False
        self.dropped = 0  # frames replaced before the pipeline took them

    def offer(self, job: Job) -> None:
        with self._changed:
            if self._job is not None:
                self.dropped += 1
            self._job = job
            self._changed.notify()

    @property
    def waiting(self) -> bool:
        return self._job is not None

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def jobs(self, stopping: Callable[[], bool] = lambda: False) -> Iterator[Job]:
        """Each newest frame as it comes, until close() or stopping()."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._job is not None or self.closed, POLL_S)
                if self.closed or stopping():
                    return
                job, self._job = self._job, None
            if job is not None:
                yield job


def _guarded(step: Callable[[Job], None]) -> Callable[[Job], Job]:
    """A stage that skips jobs already answered and turns a failure into the job's reply."""

    def stage(job: Job) -> Job:
        if job.reply is not None:
            return job
        try:
            step(job)
        except PalmbrushError as exc:
            job.reply = str(exc)
        except Exception as exc:
            log.exception("stylizing a frame failed")
            job.reply = f"internal error: {type(exc).__name__}: {exc}"[:200]
        return job

    return stage


class TabWorker:
    """One tab's pipeline. `styles` maps a name to a model (frame -> frame); `send(job)` hands
    the reply to the tab and returns False when the tab has gone."""

    def __init__(self, styles: dict, send: Callable[[Job], bool], depth: int = 1):
        from .camera import decode_jpeg, encode_jpeg

        self.latest, self.styles, self.send = Latest(), styles, send
        self.decode_jpeg, self.encode_jpeg = decode_jpeg, encode_jpeg
        self._count = threading.Lock()
        self.in_flight = 0  # frames taken and not answered yet
        steps = {"decode": self._decode, "stylize": self._stylize, "encode": self._encode}
        stages = [Stage("wait", self._take), *(Stage(n, _guarded(f)) for n, f in steps.items()),
                  Stage("send", self._answer)]  # fmt: skip
        self.pipeline = Pipeline(stages, depth)

    def _take(self) -> Iterator[Job]:
        for job in self.latest.jobs(lambda: self.pipeline.stopping):
            with self._count:
                self.in_flight += 1
            yield job

    def _decode(self, job: Job) -> None:
        job.picture = self.decode_jpeg(job.data)

    def _stylize(self, job: Job) -> None:
        frame = job.picture
        out = self.styles[job.style].run(frame)
        if job.strength < 1.0:
            mixed = frame + job.strength * (out.astype(np.float32) - frame)
            out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        job.picture = out

    def _encode(self, job: Job) -> None:
        job.reply = self.encode_jpeg(job.picture)

    def _answer(self, job: Job) -> None:
        with self._count:
            self.in_flight -= 1
        if not self.send(job):
            self.stop()

    @property
    def waiting(self) -> bool:
        """Whether the tab waits for us (a frame queued or in the pipeline): not idle."""
        return self.in_flight > 0 or self.latest.waiting

    def run(self) -> None:
        """Until stop() (the tab closed, or cannot be answered)."""
        self.pipeline.run()

    def stop(self) -> None:
        self.latest.close()
        self.pipeline.stop()

    def stats(self) -> dict:
        stages = {s.name: {k: round(v, 3) for k, v in asdict(s.times).items()}
                  for s in self.pipeline.stages[1:-1]}  # fmt: skip
        return {"dropped": self.latest.dropped, "stages": stages}
