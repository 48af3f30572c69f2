"""Soak test of ``vidfake serve``: many clients upload a mix of good and hostile files at
once; every accepted job must finish, memory must stay flat, and the latencies are
written down.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/soak_serve.py                            # 200 uploads from 32 clients
    .venv/bin/python benchmarks/soak_serve.py --uploads 40 --clients 8   # a short run
    .venv/bin/python benchmarks/soak_serve.py --checkpoint model.safetensors --workers 2

A real server is started through the CLI on a loopback port (its own data folder in a
temporary directory; a tiny untrained checkpoint unless ``--checkpoint`` is given). The
files: small generated clips in six containers and two stills with a face
(``vidfake.testing.fuzz.synthetic_seeds``; a fixture face crop is pasted in when
``<repo>/../shared/fixtures`` exists, and its small videos join the good files), and
hostile ones: seeded mutants of those (``vidfake.testing.fuzz``), an empty file, a text file
named ``.mp4``, and a copy cut in half. Upload ``i`` is file ``i`` of a seeded shuffle,
so ``--hostile`` of them (a fraction) are hostile.

Each client takes the next upload, POSTs it (a 503 is retried after its Retry-After,
at most ``--max-retries`` times), and polls an accepted job until it is done or failed.
What is checked and recorded (default ``benchmarks/results/soak_serve.json``):

- lost jobs: accepted (202) jobs that never reached done or failed, or that the job
  list does not show at the end; HTTP 5xx answers other than 503; client errors;
- answers per HTTP status and verdict statuses per file kind (good or hostile);
- latency percentiles: the upload request, and upload to finished job;
- memory: the RSS of the server process and of all its worker processes together,
  sampled every half second; "flat" compares the median of the last quarter of the
  samples taken while the clients ran with that of the second quarter (the first is
  warm-up: the workers load the face detector on their first file).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from vidfake.testing import fuzz

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
FIXTURE_VIDEOS = ("ffpp_004.mp4", "grid_bbaf2n.mpg", "talking_retalking2.mp4")


@dataclass
class Upload:
    file: str
    hostile: bool
    status_code: int | None = None
    upload_s: float | None = None
    retries: int = 0
    job_id: str | None = None
    job_status: str | None = None  # done / failed / lost
    verdict_status: str | None = None
    error: str | None = None
    total_s: float | None = None


@dataclass
class MemorySampler:
    """RSS of a process and of all its descendants, every half second, in a thread."""

    pid: int
    samples: list[dict] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(0.5):
            below = descendants(self.pid)
            self.samples.append({"t": round(time.monotonic() - start, 1), "server_mb": round(rss_mb(self.pid), 1),
                                 "workers_mb": round(sum(rss_mb(p) for p in below), 1), "workers": len(below)})


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_files(folder: Path, fixtures: Path, hostile_count: int, seed: int) -> tuple[list[Path], list[Path]]:
    """Good files and at least ``hostile_count`` distinct hostile ones."""
    face = None
    crops = sorted((fixtures / "face_crops").rglob("*.png")) if (fixtures / "face_crops").is_dir() else []
    if crops:
        from PIL import Image

        face = np.asarray(Image.open(crops[0]).convert("RGB").resize((64, 64)))
    good = fuzz.synthetic_seeds(folder / "good", face=face)
    for name in FIXTURE_VIDEOS:
        if (fixtures / "videos" / name).exists():
            good.append(fixtures / "videos" / name)
    bad = folder / "hostile"
    bad.mkdir()
    hostile = [bad / "empty.mp4", bad / "text.mp4", bad / "half.mp4"]
    hostile[0].write_bytes(b"")
    hostile[1].write_text("not a video\n" * 50)
    hostile[2].write_bytes(good[0].read_bytes()[: good[0].stat().st_size // 2])
    hostile += fuzz.write_mutants(good, bad, max(1, hostile_count - len(hostile)), seed=seed)
    return good, hostile


def tiny_checkpoint(path: Path) -> Path:
    from vidfake.checkpoints.format import init_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal.config import ModelConfig

    model = ModelConfig(backbone="resnet10t", input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                        mouth_size=32, sync_dim=32, sync_max_offset=3)
    return init_checkpoint(path, model, ExtractConfig(plan="clips:2x8"))


def client_loop(url: str, todo: queue.Queue, results: list[Upload], deadline: float, max_retries: int) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        while True:
            try:
                upload = todo.get_nowait()
            except queue.Empty:
                return
            results.append(upload)
            try:
                run_upload(client, upload, deadline, max_retries)
            except httpx.HTTPError as error:
                upload.error = f"{type(error).__name__}: {error}"


def run_upload(client: httpx.Client, upload: Upload, deadline: float, max_retries: int) -> None:
    path = Path(upload.file)
    start = time.perf_counter()
    while True:
        sent = time.perf_counter()
        with open(path, "rb") as handle:
            response = client.post("/v1/jobs", files={"file": (path.name, handle, "application/octet-stream")})
        upload.upload_s = time.perf_counter() - sent
        upload.status_code = response.status_code
        if response.status_code != 503 or upload.retries >= max_retries:
            break
        upload.retries += 1
        time.sleep(min(10.0, float(response.headers.get("Retry-After", "1"))))
    if response.status_code != 202:
        upload.error = response.json().get("detail") if response.headers.get("content-type", "").startswith(
            "application/json") else response.text[:200]
        upload.total_s = time.perf_counter() - start
        return
    upload.job_id = response.json()["id"]
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{upload.job_id}").json()
        if job["status"] in ("done", "failed"):
            upload.job_status = job["status"]
            upload.verdict_status = (job.get("verdict") or {}).get("status")
            upload.error = job.get("error")
            upload.total_s = time.perf_counter() - start
            return
        time.sleep(0.25)
    upload.job_status = "lost"


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    array = np.asarray(values)
    return {"n": len(values), **{f"p{q}": round(float(np.percentile(array, q)), 3) for q in (50, 90, 99)},
            "max": round(float(array.max()), 3)}


def flatness(samples: list[dict], key: str, since: float) -> dict:
    """Of the samples taken from ``since`` (the server ready, the clients started): the
    median of the last quarter minus that of the second (the first quarter is warm-up:
    the workers load the face detector and their allocators fill on the first files)."""
    up = [s[key] for s in samples if s["t"] >= since]
    if len(up) < 8:
        return {"samples": len(up), "note": "too few samples to judge"}
    quarter = len(up) // 4
    second, last = float(np.median(up[quarter : 2 * quarter])), float(np.median(up[-quarter:]))
    return {"samples": len(up), "warm_up_mb": round(float(np.median(up[:quarter])), 1),
            "second_quarter_mb": round(second, 1), "last_quarter_mb": round(last, 1),
            "growth_mb": round(last - second, 1), "peak_mb": round(max(up), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--hostile", type=float, default=0.3, help="fraction of the uploads that are hostile files")
    parser.add_argument("--workers", type=int, default=1, help="the server's scoring workers")
    parser.add_argument("--queue-size", type=int, default=100, help="the server's queue bound (503 beyond it)")
    parser.add_argument("--max-retries", type=int, default=30, help="503 answers a client retries before giving up")
    parser.add_argument("--checkpoint", type=Path, help="model to serve (default: a tiny untrained one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deadline-min", type=float, default=60.0, help="the whole run's time bound, minutes")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "soak_serve.json")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vidfake-soak-"))
    rng = random.Random(args.seed)
    n_hostile = round(args.uploads * args.hostile)
    good, hostile = make_files(tmp / "files", args.fixtures, n_hostile, args.seed)
    plan = [Upload(str(good[i % len(good)]), False) for i in range(args.uploads - n_hostile)]
    plan += [Upload(str(hostile[i % len(hostile)]), True) for i in range(n_hostile)]
    rng.shuffle(plan)
    checkpoint = args.checkpoint or tiny_checkpoint(tmp / "tiny.safetensors")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp / "server.log"
    command = [sys.executable, "-m", "vidfake", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--checkpoint", str(checkpoint), "--data-dir", str(tmp / "data"), "--workers", str(args.workers),
               "--queue-size", str(args.queue_size), "--log-level", "warning"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1"})
    sampler = MemorySampler(server.pid)
    sampler.start()
    started = time.monotonic()
    results: list[Upload] = []
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 600:
                raise RuntimeError("the server was not ready within 10 minutes")
            time.sleep(0.5)
        ready_s = time.monotonic() - started  # the sampler's clock starts with the server
        todo: queue.Queue[Upload] = queue.Queue()
        for upload in plan:
            todo.put(upload)
        deadline = time.monotonic() + args.deadline_min * 60
        run_start = time.perf_counter()
        clients = [threading.Thread(target=client_loop, args=(url, todo, results, deadline, args.max_retries))
                   for _ in range(args.clients)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        run_s = time.perf_counter() - run_start
        listed = {}
        with httpx.Client(base_url=url, timeout=60) as client:
            before = None
            while True:
                page = client.get("/v1/jobs", params={"limit": 500, **({"before": before} if before else {})}).json()
                listed.update({j["id"]: j["status"] for j in page["jobs"]})
                before = page["next_before"]
                if before is None:
                    break
    finally:
        sampler.stop()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()

    accepted = [u for u in results if u.status_code == 202]
    lost = [u.job_id for u in accepted if u.job_status not in ("done", "failed") or listed.get(u.job_id) != u.job_status]
    server_errors = [asdict(u) for u in results if u.status_code is not None and u.status_code >= 500
                     and u.status_code != 503]
    report = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "server_ready_s": round(ready_s, 1),
        "run_s": round(run_s, 1),
        "uploads": len(results),
        "accepted": len(accepted),
        "lost_jobs": lost,
        "server_errors": server_errors,
        "client_errors": [asdict(u) for u in results if u.status_code is None],
        "http_status": {
            kind: dict(Counter(str(u.status_code) for u in results if u.hostile == hostile))
            for kind, hostile in (("good", False), ("hostile", True))},
        "job_status": {
            kind: dict(Counter(f"{u.job_status}:{u.verdict_status}" for u in accepted if u.hostile == hostile))
            for kind, hostile in (("good", False), ("hostile", True))},
        "retries_503": sum(u.retries for u in results),
        "latency_s": {
            "upload_request": percentiles([u.upload_s for u in results if u.upload_s is not None]),
            "accepted_to_finished": percentiles([u.total_s for u in accepted if u.total_s is not None]),
            "good_files_finished": percentiles([u.total_s for u in accepted if u.total_s is not None and not u.hostile]),
        },
        "memory": {"server": flatness(sampler.samples, "server_mb", ready_s),
                   "workers": flatness(sampler.samples, "workers_mb", ready_s),
                   "samples": sampler.samples[:: max(1, len(sampler.samples) // 120)]},
        "failed_jobs": [{"file": Path(u.file).name, "error": u.error} for u in accepted if u.job_status == "failed"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{report['uploads']} uploads from {args.clients} clients in {report['run_s']} s: {len(accepted)} accepted, "
          f"{len(lost)} lost, {len(server_errors)} server errors; upload to finished "
          f"{report['latency_s']['accepted_to_finished']}; memory growth server "
          f"{report['memory']['server'].get('growth_mb')} MB, workers {report['memory']['workers'].get('growth_mb')} MB")
    print(f"wrote {args.out}")
    return 1 if lost or server_errors or report["client_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
