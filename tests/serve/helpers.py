"""Helpers for the ``vidfake serve`` tests: a real server in a subprocess on a loopback
port, started through the CLI exactly as the README says, and a tiny untrained model."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.paths import REPO
from tests.processes import free_port

START_TIMEOUT_S = 180.0  # the worker imports torch and loads the model; the test machine is shared


class Server:
    """``vidfake serve`` in its own process group, so a test can kill it like a crash."""

    def __init__(self, checkpoint: Path, data_dir: Path, *args: str, token: str | None = None, env: dict | None = None):
        self.checkpoint, self.data_dir, self.args, self.token = checkpoint, data_dir, args, token
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, wait_ready: bool = True) -> Server:
        """Start, and wait until the model is loaded (``wait_ready``) or only until the
        HTTP side answers (uploads are accepted while the model loads)."""
        command = [sys.executable, "-m", "vidfake", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--checkpoint", str(self.checkpoint), "--data-dir", str(self.data_dir), *self.args]
        env = {**os.environ, **self.env}
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.wait_ready(path="/readyz" if wait_ready else "/healthz")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vidfake serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"vidfake serve not ready after {timeout_s} s:\n{self.log()}")

    def client(self, token: str | None = "default", **kwargs) -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, the way a service manager stops it; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL to the whole process group: the server and its workers die at once,
        as in a power cut or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self._log.close()

    def __enter__(self) -> Server:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            self.kill()


def upload(client: httpx.Client, path: Path, name: str | None = None) -> httpx.Response:
    with open(path, "rb") as f:
        return client.post("/v1/jobs", files={"file": (name or path.name, f, "application/octet-stream")})


def wait_done(client: httpx.Client, job_id: str, timeout_s: float = 120.0) -> dict:
    """Poll until the job is done or failed; returns its record."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s} s")
        time.sleep(0.2)


def all_jobs(client: httpx.Client, limit: int = 7) -> list[dict]:
    """Every job, through the paged list (small pages, to exercise the cursor)."""
    jobs, before = [], None
    while True:
        params = {"limit": limit, **({"before": before} if before else {})}
        page = client.get("/v1/jobs", params=params).raise_for_status().json()
        jobs += page["jobs"]
        before = page["next_before"]
        if before is None:
            return jobs


class SleepTask:
    """A child-process handler for the process tests: sleeps, crashes or answers on request."""

    def __init__(self, fail_setup: bool = False):
        if fail_setup:
            raise ValueError("set-up refused")
        self.info = {"pid": os.getpid()}

    def __call__(self, request: dict):
        if request.get("sleep"):
            time.sleep(request["sleep"])
        if request.get("crash"):
            os._exit(7)
        if request.get("raise"):
            raise KeyError(request["raise"])
        return {"echo": request.get("echo"), "pid": os.getpid()}


class FakeScoreTask:
    """A stand-in for ``ScoreTask`` in a real worker process, with no model: the upload's
    text says what to do (``sleep:S`` then answer ok, ``unreadable``, ``raise``). Each
    call appends the worker's pid to ``<upload>.calls`` before it starts, so a test can
    count the attempts and kill the worker mid-job."""

    def __init__(self, **kwargs):
        self.info = {"name": "fake", "version": "0", "sha256": "0" * 64}

    def __call__(self, request: dict) -> dict:
        path = Path(request["path"])
        with open(f"{path}.calls", "a") as calls:
            calls.write(f"{os.getpid()}\n")
        command = path.read_text()
        if command.startswith("sleep:"):
            time.sleep(float(command.split(":", 1)[1]))
        if command == "raise":
            raise ValueError("the handler failed")
        status = "unreadable" if command == "unreadable" else "ok"
        verdict = {"path": request["display_name"], "status": status, "score": 0.5 if status == "ok" else None,
                   "warnings": [], "error": "damaged" if status != "ok" else None, "pid": os.getpid()}
        return {"verdict": verdict, "faces": []}
