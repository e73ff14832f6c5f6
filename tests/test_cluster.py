"""Many clips on a Dask cluster: `palmbrush stylize CLIPS... --dask ADDRESS`, one clip per task,
on a real distributed LocalCluster of two worker processes on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import av
import distributed  # a dev dependency (pyproject.toml): never skipped
import numpy as np
import pytest
from test_stylize import _clip, _streams


@pytest.fixture(scope="module")
def scheduler():
    """Two worker processes, one task at a time each; the scheduler's address and the workers'."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # a death is final
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)  # fmt: skip
    try:
        yield cluster.scheduler_address, _workers(cluster)
    finally:
        cluster.close()


def _workers(cluster) -> set[str]:
    with distributed.Client(cluster) as client:
        return set(client.scheduler_info()["workers"])


def _stylize(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "palmbrush.cli.main", "stylize", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]


def test_each_clip_is_one_task_and_a_bad_one_loses_no_other(tmp_path, scheduler):
    """Three good clips and a corrupt one: the good ones are written, each by a cluster worker,
    frame for frame what a local run writes; the corrupt one is an error naming it."""
    from palmbrush.samples import stylenet

    address, workers = scheduler
    model = tmp_path / "model.onnx"
    model.write_bytes(stylenet(seed=3).SerializeToString())
    clips = []
    for i, size in enumerate([(64, 48), (80, 64), (48, 48)]):
        clips.append(tmp_path / f"clip{i}.mp4")
        _clip(clips[-1], frames=10 + i, size=size, audio=i == 0)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    out, here = tmp_path / "out", tmp_path / "here"
    common = ["--style", str(model), "--engine", "reference", "--threads", "1"]

    done = _stylize(*map(str, clips), str(broken), "-o", str(out), *common, "--dask", address,
                    "--json")  # fmt: skip
    assert done.returncode == 1, done.stderr
    outcomes = {o["input"]: o for o in json.loads(done.stdout)}
    assert not outcomes[str(broken)]["ok"] and "broken.mp4" in outcomes[str(broken)]["error"]
    assert "broken.mp4" in done.stderr and "Traceback" not in done.stderr
    assert not list(out.glob("broken*"))
    local = _stylize(*map(str, clips), "-o", str(here), *common)
    assert local.returncode == 0, local.stderr
    for clip in clips:
        outcome = outcomes[str(clip)]
        assert outcome["ok"] and outcome["worker"] in workers, outcome
        written = out / f"{clip.stem}.model.mp4"
        assert outcome["output"] == str(written)
        assert _streams(written) == _streams(clip)  # frames, rate, timing, audio
        ours, theirs = _frames(written), _frames(here / written.name)
        assert len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_an_existing_output_is_kept_and_the_task_says_so(tmp_path, scheduler):
    """The worker checks each output like a local run: without --overwrite an existing file is
    left alone and its task's error says so; the other clip is written."""
    address, _ = scheduler
    clips = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for clip in clips:
        _clip(clip, frames=6, audio=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.starry-night.mp4").write_bytes(b"mine")
    done = _stylize(*map(str, clips), "-o", str(out), "--engine", "reference", "--dask", address)
    assert done.returncode == 1 and "exists" in done.stderr and "Traceback" not in done.stderr
    assert (out / "a.starry-night.mp4").read_bytes() == b"mine"
    assert _streams(out / "b.starry-night.mp4")["frames"] == 6
    # one clip's output is the other's input: refused even with --overwrite, input intact
    second = tmp_path / "a.starry-night.mp4"
    _clip(second, frames=5, audio=False)
    before = second.read_bytes()
    done = _stylize(str(clips[0]), str(second), "--overwrite", "--engine", "reference",
                    "--dask", address)  # fmt: skip
    assert done.returncode == 1 and "input" in done.stderr, done.stderr
    assert second.read_bytes() == before


def _exit(code: int) -> None:
    import os

    os._exit(code)  # the worker process dies mid-task


def test_a_task_whose_worker_dies_is_reported_and_the_rest_are_kept(scheduler):
    from palmbrush.media.cluster import run_tasks

    address, _ = scheduler
    with distributed.Client(address) as client:
        results = run_tasks(client, lambda x: x if x >= 0 else _exit(1), [(1,), (-1,), (2,)],
                            failed=lambda job, message: message)  # fmt: skip
        client.wait_for_workers(2, timeout=60)  # the nanny starts a new one
    assert results[0] == 1 and results[2] == 2
    assert results[1].startswith("the cluster lost this task: KilledWorker")


def test_no_scheduler_and_stdin_are_clear_errors(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clip = tmp_path / "clip.mp4"
    _clip(clip, frames=4, audio=False)
    done = _stylize(str(clip), "--dask", f"tcp://127.0.0.1:{port}", "--engine", "reference")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in done.stderr
    assert not list(tmp_path.glob("clip.*.mp4"))
    piped = subprocess.run(
        [sys.executable, "-m", "palmbrush.cli.main", "stylize", "-", "--dask", "127.0.0.1:1"],
        input=b"", capture_output=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 2 and b"--dask works on files" in piped.stderr
