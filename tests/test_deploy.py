"""deploy/: every file parses, the cluster configs keep token auth on and servers on loopback,
and every metric the Grafana dashboard queries is one that disco really exports."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from disco_rules.cluster.pool import ACTOR_ITEM_SECONDS_METRIC, ACTOR_ITEMS_METRIC
from disco_rules.discovery.config import parse_config, warm_start_paths
from disco_rules.discovery.metrics import SearchMetrics
from disco_rules.discovery.plan import TaskPlan

DEPLOY = Path(__file__).parent.parent / "deploy"
YAML_FILES = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
JSON_FILES = sorted(DEPLOY.rglob("*.json"))
SERIES_SUFFIXES = {"counter": ("_total",), "gauge": ("",),
                   "histogram": ("_bucket", "_sum", "_count")}


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest(path: Path, kind: str) -> dict:
    (found,) = [doc for doc in documents(path) if doc["kind"] == kind]
    return found


def exported_series() -> set[str]:
    """Series names disco exports: the driver's registry, and the actors' Ray metrics as Ray
    2.60 names them (prefix ray_, counters with _total)."""
    from ray._private.telemetry.open_telemetry_metric_recorder import NAMESPACE

    names = {family.name + suffix for family in SearchMetrics().registry.collect()
             for suffix in SERIES_SUFFIXES[family.type]}
    names.add(f"{NAMESPACE}_{ACTOR_ITEMS_METRIC}_total")
    names |= {f"{NAMESPACE}_{ACTOR_ITEM_SECONDS_METRIC}{suffix}"
              for suffix in SERIES_SUFFIXES["histogram"]}
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "disco-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] if panel["type"] != "row"
            for target in panel["targets"]]


def test_the_expected_files_exist():
    for name in ("ray-cluster.yaml", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml",
                 "Dockerfile", "prometheus.yml", "grafana/disco-dashboard.json"):
        assert (DEPLOY / name).is_file(), name


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    assert documents(path)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_json_file_parses(path):
    assert json.loads(path.read_text())


def test_the_cluster_launcher_config_passes_rays_own_schema():
    from ray.autoscaler._private.util import fillout_defaults, validate_config

    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    validate_config(fillout_defaults(config))
    types = config["available_node_types"]
    head = types.pop(config["head_node_type"])
    assert head is not None
    gpu = [t for t in types.values() if t["resources"].get("GPU") == 1]
    cpu = [t for t in types.values() if not t["resources"].get("GPU")]
    assert len(gpu) == 1 and cpu
    assert any("pip install" in c and "~/disco" in c for c in config["setup_commands"])
    assert any("jax[cuda12]" in c for c in gpu[0]["worker_setup_commands"])
    assert config["file_mounts"]["~/disco"] == "."


def test_the_cluster_launcher_starts_every_node_with_token_auth_and_a_loopback_dashboard():
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"]
              if "ray start" in c]
    assert len(starts) == 2
    assert all(c.startswith("RAY_AUTH_MODE=token ") for c in starts)
    head_start = shlex.split(next(c for c in starts if "--head" in c))
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    # the token reaches every node as Ray's default token file
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_kuberay_manifests_have_the_expected_kinds_and_versions():
    assert [(d["apiVersion"], d["kind"]) for d in documents(DEPLOY / "kuberay/raycluster.yaml")] \
        == [("ray.io/v1", "RayCluster")]
    assert [(d["apiVersion"], d["kind"]) for d in documents(DEPLOY / "kuberay/rayjob.yaml")] \
        == [("v1", "ConfigMap"), ("v1", "PersistentVolumeClaim"), ("ray.io/v1", "RayJob")]


def cluster_specs() -> list[dict]:
    return [manifest(DEPLOY / "kuberay/raycluster.yaml", "RayCluster")["spec"],
            manifest(DEPLOY / "kuberay/rayjob.yaml", "RayJob")["spec"]["rayClusterSpec"]]


@pytest.mark.parametrize("spec", cluster_specs(), ids=["raycluster", "rayjob"])
def test_kuberay_clusters_use_token_auth_and_have_a_cpu_and_a_gpu_group(spec):
    assert spec["authOptions"] == {"mode": "token"}
    assert spec["rayVersion"].startswith("2.") and int(spec["rayVersion"].split(".")[1]) >= 52
    gpus = {group["groupName"]: group["template"]["spec"]["containers"][0]["resources"]
            ["limits"].get("nvidia.com/gpu", 0) for group in spec["workerGroupSpecs"]}
    assert sorted(gpus.values()) == [0, 1]


def test_the_standalone_kuberay_dashboard_listens_on_loopback():
    spec = manifest(DEPLOY / "kuberay/raycluster.yaml", "RayCluster")["spec"]
    assert spec["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"


def test_the_rayjob_launches_the_mounted_search_config_on_the_cluster():
    job = manifest(DEPLOY / "kuberay/rayjob.yaml", "RayJob")["spec"]
    words = shlex.split(job["entrypoint"])
    assert words[:3] == ["disco", "launch", "/config/search.toml"]
    assert words[words.index("--address") + 1] == "auto"
    assert "--metrics-host" not in words  # the driver's metrics stay on loopback
    head = job["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    config_volume = next(v for v in head["volumes"] if v["name"] == "search-config")
    assert mounts["search-config"] == "/config"
    config_map = manifest(DEPLOY / "kuberay/rayjob.yaml", "ConfigMap")
    assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]
    config = parse_config(config_map["data"]["search.toml"])
    TaskPlan.from_config(config)
    assert warm_start_paths(config, Path("/config"))


def test_no_file_in_deploy_turns_token_auth_off():
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        text = path.read_text()
        assert not re.search(r"RAY_AUTH_MODE\W{0,3}(disabled|none|off)", text, re.I), path
        for line in text.splitlines():
            if "RAY_AUTH_MODE" in line and "=" in line and not line.lstrip().startswith("#"):
                assert re.search(r"RAY_AUTH_MODE=token\b", line), (path, line)
        if path.suffix in (".yaml", ".yml"):
            for doc in documents(path):
                for env in _env_entries(doc):
                    if env.get("name") == "RAY_AUTH_MODE":
                        assert env.get("value") == "token", path
                for options in _values_of(doc, "authOptions"):
                    assert options.get("mode") == "token", path


def _values_of(node, key: str):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _values_of(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of(item, key)


def _env_entries(node):
    for env in _values_of(node, "env"):
        yield from env if isinstance(env, list) else []


def test_the_dockerfile_builds_a_cpu_and_a_cuda_variant_of_disco():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)\s*$", text, re.M | re.I)
    assert {"cpu", "cuda"} <= set(stages)
    cuda = text.split("AS cuda", 1)[1].split("\nFROM ", 1)[0]
    assert "jax[cuda12]" in cuda
    assert "jax[cuda12]" not in text.split("AS cpu", 1)[1]
    assert re.search(r"^ENV\s+RAY_AUTH_MODE=token", text, re.M)
    root = DEPLOY.parent
    for source in re.findall(r"^COPY\s+(.+?)\s+\S+\s*$", text, re.M):
        for name in source.split():
            assert (root / name).exists(), name
    for package in ("dsl", "populations", "discovery", "cluster"):
        assert re.search(rf"^COPY\s+{package}\s", text, re.M), package


def test_prometheus_scrapes_the_driver_and_rays_service_discovery_file():
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["disco"]["static_configs"][0]["targets"] == ["127.0.0.1:9400"]
    (files,) = [c["files"] for c in jobs["ray"]["file_sd_configs"]]
    assert files == [f"/tmp/ray/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"]
    job = manifest(DEPLOY / "kuberay/rayjob.yaml", "RayJob")["spec"]["entrypoint"].split()
    assert job[job.index("--metrics-port") + 1] == "9400"


def test_every_metric_the_dashboard_queries_is_exported():
    exported = exported_series()
    queries = dashboard_queries()
    assert queries
    used = set()
    for expr in queries:
        names = {name for name in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)
                 if name.startswith(("disco_", "ray_"))}
        assert names, expr
        assert names <= exported, (expr, names - exported)
        used |= names
    assert any(name.startswith("ray_disco_actor_") for name in used)
    assert "disco_regret" in used


def test_the_dashboard_uses_its_datasource_variable():
    dashboard = json.loads((DEPLOY / "grafana" / "disco-dashboard.json").read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"].strip("${}") in variables
