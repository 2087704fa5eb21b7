"""Running work on Ray: evaluator actors, ordered maps with retries, placement on GPU nodes."""

from disco_rules.cluster.pool import EvaluatorActor, EvaluatorPool, Failed, PoolConfig, start_ray

__all__ = ["EvaluatorActor", "EvaluatorPool", "Failed", "PoolConfig", "start_ray"]
