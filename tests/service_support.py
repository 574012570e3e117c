"""Starting the installed ``matcher serve`` as a real server on loopback, for the tests that need
real processes: the package, replicas, overload and the live catalogue."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MATCHER = Path(sys.executable).with_name("matcher")  # the console script pip installed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        return request(self.url + path, timeout=timeout)

    def post(self, path: str, body: Any, timeout: float = 10) -> tuple[int, Any]:
        return request(self.url + path, body, timeout=timeout)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]


def request(url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, _decode(r.read())
    except urllib.error.HTTPError as e:
        return e.code, _decode(e.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any MATCHER_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATCHER_")}
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running(
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    workers: int = 2,
    port: int | None = None,
    args: tuple[str, ...] = (),
    ready_within: float = 120.0,
) -> Iterator[Server]:
    """``matcher serve`` in ``cwd``, ready (``/healthz`` 200) or the test fails with its log."""
    port = port or free_port()
    log = cwd / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(MATCHER), "serve", "--port", str(port), "--workers", str(workers), *args],
            cwd=cwd, env=clean_env(env), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + ready_within
        while True:
            if process.poll() is not None:
                raise AssertionError(f"matcher serve exited {process.returncode}:\n{log_of(log)}")
            try:
                if server.get("/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"matcher serve not ready in {ready_within} s:\n{log_of(log)}")
            time.sleep(0.1)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def log_of(path: Path) -> str:
    return path.read_text("utf-8", "replace")[-4000:] if path.exists() else "(no log)"
