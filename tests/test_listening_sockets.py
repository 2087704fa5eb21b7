"""A local Ray, started as `disco launch` starts it (start_ray(None)), listens on loopback only:
every TCP socket in LISTEN state held by this process or any process under it (GCS, raylet,
dashboard agent, runtime-env agent, workers, the evaluator actor) is bound to 127.0.0.0/8 or
::1 (IPv4-mapped or not). Read from /proc, so Linux only."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from disco_rules.cluster.pool import EvaluatorPool, PoolConfig, start_ray  # noqa: E402
from tests.processes import process_stats  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(),
                                reason="reads listening sockets from /proc (Linux)")

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _descendants(root: int) -> set[int]:
    """`root` and every process under it, by parent pid."""
    children: dict[int, list[int]] = {}
    for pid, _, fields in process_stats():
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def _socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets among the open files of `pid` (none if it has ended)."""
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def _listening() -> dict[int, tuple[str, int]]:
    """Socket inode -> (address, port) of every TCP socket in LISTEN state on this machine."""
    found = {}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found[int(fields[9])] = (socket.inet_ntop(family, raw), int(port, 16))
    return found


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


class Identity:
    def __call__(self, x: int) -> int:
        return x


@pytest.fixture(scope="module")
def local_pool():
    if ray.is_initialized():
        ray.shutdown()
    start_ray(None, num_cpus=1)
    pool = EvaluatorPool(Identity, PoolConfig(num_actors=1))
    yield pool
    pool.shutdown()
    ray.shutdown()


def test_the_loopback_check_tells_loopback_from_other_addresses():
    assert all(map(_is_loopback, ["127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.1.1"]))
    assert not any(map(_is_loopback, ["0.0.0.0", "::", "192.0.2.2", "::ffff:10.0.0.1"]))


@pytest.mark.slow  # `local_pool` starts a local Ray and an actor
def test_every_listening_socket_of_a_local_ray_is_on_loopback(local_pool):
    assert local_pool.map([1, 2]) == [1, 2]  # the actor has started and served calls
    listening = _listening()
    ours = {pid: [listening[inode] for inode in _socket_inodes(pid) if inode in listening]
            for pid in _descendants(os.getpid())}
    held = {pid: addresses for pid, addresses in ours.items() if addresses}
    assert len(held) >= 3, f"expected the GCS, raylet and workers to listen: {held}"
    exposed = {pid: [a for a in addresses if not _is_loopback(a[0])]
               for pid, addresses in held.items()}
    assert not any(exposed.values()), f"listening beyond loopback: {exposed}"


@pytest.mark.slow
def test_the_node_has_the_loopback_address(local_pool):
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
