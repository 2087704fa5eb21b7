"""A local Ray starts without the warnings a user cannot act on (JAX's fork warning, Ray's
token-authentication notice), and still says that it started."""

import subprocess
import sys

START_AFTER_JAX = """
import jax.numpy as jnp
jnp.zeros(1).block_until_ready()  # JAX's backend is up, as in the driver after a config check
from disco_rules.cluster.pool import start_ray
start_ray(None, num_cpus=1)
import ray
ray.shutdown()
"""


def test_a_local_ray_starts_without_fork_or_token_warnings():
    done = subprocess.run([sys.executable, "-W", "default", "-c", START_AFTER_JAX],
                          capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Started a local Ray instance" in output
    assert "os.fork() was called" not in output
    assert "Token authentication is enabled" not in output
