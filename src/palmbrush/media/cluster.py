"""Many clips on many machines: one clip per task on a Dask distributed cluster.

palmbrush schedules nothing itself. `palmbrush stylize CLIPS... -o DIR --dask ADDRESS` hands
each input to the cluster as one task (`run_tasks`): Dask places the tasks on its workers, and
a worker that dies has its task rerun elsewhere. A task is the whole file to file job, the same
function a local run calls, so a clip stylized on a cluster is the same file as one stylized
here. Inputs, outputs and style model files are paths every worker must see (a shared
filesystem, as for any render farm); built-in styles come with the package each worker has.

Workers: `dask worker ADDRESS --nthreads 1` (one task at a time per process; the task's video
pipeline uses the machine's cores), or several per machine with `--nprocs` and `--threads`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from ..errors import PalmbrushError

LOST = ("KilledWorker", "CancelledError", "FutureCancelledError")  # the cluster's, not the task's
INSTALL = "pip install 'palmbrush[cluster]' (Dask's distributed package)"


def connect(address: str, timeout: float = 10.0):
    """A client of the scheduler at ADDRESS (tcp://host:8786 or host:8786), or a clear error."""
    try:
        from distributed import Client
    except ImportError:
        raise PalmbrushError(f"--dask needs {INSTALL}") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PalmbrushError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def run_tasks(client, task: Callable, jobs: Sequence[tuple], *, failed: Callable,
              done: Callable[[int, object], None] | None = None) -> list:  # fmt: skip
    """task(*job) for each job on the cluster, one task each; the results in the jobs' order.
    A task that raised, or whose workers kept dying (distributed's KilledWorker), gives
    failed(job, message) instead, so one bad clip loses no other; done(i, result) as each ends.
    """
    from distributed import as_completed

    futures = [client.submit(task, *job, pure=False) for job in jobs]
    index = {future.key: i for i, future in enumerate(futures)}
    results: list = [None] * len(jobs)
    try:
        for future in as_completed(futures, loop=client.loop):
            i = index[future.key]
            try:
                results[i] = future.result()
            except Exception as exc:  # the task's own mistakes are results: this is a bug or
                kind = type(exc).__name__  # the cluster's doing
                what = "the cluster lost this task" if kind in LOST else "the task failed"
                results[i] = failed(jobs[i], f"{what}: {kind}: {exc}"[:300])
            if done is not None:
                done(i, results[i])
    finally:  # interrupted: the cluster drops what is still queued
        for future in futures:
            with contextlib.suppress(Exception):
                future.cancel()
    return results


def worker_name() -> str | None:
    """The address of the Dask worker running this code, None outside one."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def worker_threads() -> int:
    """Cores per task slot on this worker: its machine's cores over the tasks it runs at once."""
    import os

    from distributed import get_worker

    return max(1, (os.cpu_count() or 1) // max(1, get_worker().state.nthreads))
