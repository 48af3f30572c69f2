"""What the tests that start real processes (``vidfake serve``, ``torchrun``, a training run in
a subprocess) share: a free loopback port and the environment a child gets."""
from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment (offline, as the root conftest set it) for a child on one
    OpenMP thread: two children on the 2-core test machine must not fight over cores."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}
