"""Linux network namespaces that a test creates, so that it can add and remove addresses
(an agent's address leaving the host) with all traffic staying inside them.

:func:`namespace` makes one with a unique name, its loopback up and a veth pair whose
two ends are both inside (each end an interface whose addresses the test changes), and
deletes it afterwards, even when the test failed. Python 3.11 has no ``os.setns``:
:func:`run_in` runs a coroutine in a thread of its own that entered the namespace with
libc's ``setns`` and runs its own event loop; every socket made there (listeners, RTP,
rtnetlink) belongs to the namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def ip(name: str, *args: str) -> None:
    """``ip -n name args...``; raises on failure."""
    subprocess.run(["ip", "-n", name, *args], check=True, capture_output=True, timeout=10)


@contextmanager
def namespace(interfaces: dict[str, str]) -> Iterator[str]:
    """A new namespace holding a veth pair named after ``interfaces``' two keys, each
    with its address (``{"va": "10.99.0.1/24", "vb": "10.99.1.1/24"}``); its name."""
    name = f"voip-test-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=10)
    try:
        ip(name, "link", "set", "lo", "up")
        first, second = interfaces
        ip(name, "link", "add", first, "type", "veth", "peer", "name", second)
        for interface, address in interfaces.items():
            ip(name, "link", "set", interface, "up")
            ip(name, "addr", "add", address, "dev", interface)
        yield name
    finally:
        subprocess.run(
            ["ip", "netns", "delete", name], check=False, capture_output=True, timeout=10
        )


def run_in(name: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` in a new event loop in a thread inside the namespace ``name``;
    its result, or its exception raised here."""
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def enter_and_run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns {name}: {os.strerror(code)}")
            finally:
                os.close(fd)
            outcome.append(asyncio.run(main()))
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=enter_and_run, name=f"netns {name}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    result: T = outcome[0]
    return result
