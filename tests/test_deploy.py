"""deploy/: what CI cannot run (no Docker, no cluster) it checks by reading the files.

`make lint-deploy` runs hadolint, yamllint and kubernetes-validate (the Deployment and the
Service against Kubernetes' own schemas). Those schemas have no Gateway API kinds, and no
linter knows what compose or nginx expect of each other: those are checked here.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from explorer.cli import build_parser
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
TEMPLATE = DEPLOY / "nginx" / "cnn-explorer.conf.template"
HEALTH = "/_stcore/health"
SCRIPT_HEALTH = "/_stcore/script-health-check"
"""Runs the app's script once: start-up checks ask it so a deep link works at once."""
APP_PORT = 8501
# Gateway API's Duration (GEP-2257), as its CRDs validate it
GATEWAY_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")


def _yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _k8s(kind: str) -> dict[str, Any]:
    found = [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in _yaml_documents(path)
        if doc.get("kind") == kind
    ]
    assert len(found) == 1, f"one {kind} expected in deploy/k8s, found {len(found)}"
    return found[0]


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _template_placeholders() -> set[str]:
    if not TEMPLATE.is_file():
        pytest.skip(f"{TEMPLATE.relative_to(REPO)} is not there yet")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", TEMPLATE.read_text()))


# --- the image ------------------------------------------------------------------------------


def _in_build_context(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore lets ``path`` in: the last pattern matching it or a parent wins."""
    parts = path.split("/")
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            included = negated
    return included


def test_dockerignore_lets_in_the_app_and_nothing_else() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    context = {path for path in tracked if _in_build_context(path, patterns)}
    for needed in (
        "streamlit_app.py",
        "requirements.txt",
        "constraints.txt",
        ".streamlit/config.toml",
        "explorer/models/zoo.py",
        "explorer/__main__.py",
        "pages/image.py",
        "pages/canvas.js",
        "assets/models/lenet5.pth",
    ):
        assert needed in context, needed
    assert not any(p.startswith(("tests/", "deploy/", "docs/", ".ci/", ".git")) for p in context)
    assert "README.md" not in context
    assert not _in_build_context(".venv/bin/python", patterns)
    assert not _in_build_context("explorer/__pycache__/zoo.cpython-311.pyc", patterns)
    # every file the Dockerfile copies by name is in the context
    for keyword, args in _dockerfile():
        if keyword == "COPY":
            sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
            for source in sources:
                if source != ".":
                    assert source in context, f"COPY {source}: not in the build context"


def test_dockerfile_runs_the_app_as_the_issue_asks() -> None:
    instructions = _dockerfile()
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in instructions:
        by_keyword.setdefault(keyword, []).append(args)
    assert by_keyword["FROM"] == ["python:3.11-slim"]
    assert "TORCH_VARIANT=cpu" in by_keyword["ARG"]
    install = " ".join(a for a in by_keyword["RUN"] if "pip install" in a)
    assert 'download.pytorch.org/whl/${TORCH_VARIANT}"' in install
    assert install.count("--constraint constraints.txt") == 2
    env = " ".join(by_keyword["ENV"])
    venv = re.search(r"VIRTUAL_ENV=(\S+)", env)
    workdir = by_keyword["WORKDIR"][-1]
    assert venv and not venv.group(1).startswith(workdir), "the venv must live outside the app"
    # the last USER before CMD is numeric and not root (Kubernetes' runAsNonRoot checks a uid)
    user = by_keyword["USER"][-1].split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert by_keyword["EXPOSE"] == [str(APP_PORT)]
    assert SCRIPT_HEALTH in by_keyword["HEALTHCHECK"][0]
    assert by_keyword["CMD"] == [
        '["streamlit", "run", "streamlit_app.py", "--server.port", "8501", '
        '"--server.address", "0.0.0.0"]'
    ]
    # the weights step calls the CLI as it exists, and a failed fetch never fails the build
    fetch = next(a for a in by_keyword["RUN"] if "fetch-weights" in a)
    assert "python -m explorer fetch-weights --no-progress $models" in fetch
    assert "|| echo" in fetch
    parsed = build_parser().parse_args(["fetch-weights", "--no-progress", "--models", "resnet18"])
    assert parsed.models == ["resnet18"] and parsed.no_progress


# --- compose --------------------------------------------------------------------------------


def test_compose_nginx_renders_the_shared_template_for_three_healthy_replicas() -> None:
    from explorer.hosting.cluster import PLACEHOLDERS, render_template, upstream_servers

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    apps = sorted(name for name in services if name != "nginx")
    assert apps == ["app1", "app2", "app3"]
    for name in apps:
        app = services[name]
        assert (DEPLOY / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        )
        assert SCRIPT_HEALTH in " ".join(app["healthcheck"]["test"])
    nginx = services["nginx"]
    assert nginx["image"].startswith("nginx:")
    # the image's entrypoint runs envsubst on /etc/nginx/templates/*.template
    mounts = [volume.split(":") for volume in nginx["volumes"]]
    assert [(DEPLOY / host).resolve() for host, _, _ in mounts] == [TEMPLATE]
    assert mounts[0][1] == "/etc/nginx/templates/cnn-explorer.conf.template"
    assert mounts[0][2] == "ro"
    env = nginx["environment"]
    assert set(env) == _template_placeholders() == set(PLACEHOLDERS)
    # the same upstream lines the local cluster writes, one per app service
    wanted = upstream_servers([f"{name}:{APP_PORT}" for name in apps])
    assert env["UPSTREAM_SERVERS"].split() == wanted.split()
    published = [port.split(":") for port in nginx["ports"]]
    assert published == [[env["LISTEN_PORT"], env["LISTEN_PORT"]]]
    assert nginx["depends_on"] == {name: {"condition": "service_healthy"} for name in apps}
    assert HEALTH in " ".join(nginx["healthcheck"]["test"])
    # what envsubst makes of it: both placeholders filled, nginx's own $variables untouched
    site = render_template(TEMPLATE.read_text(), {name: str(env[name]) for name in PLACEHOLDERS})
    assert "${" not in site
    assert f"listen {env['LISTEN_PORT']};" in site
    assert all(f"server {name}:{APP_PORT}" in site for name in apps)
    assert "$http_upgrade" in site


# --- Kubernetes -----------------------------------------------------------------------------


def test_deployment_probes_resources_and_security() -> None:
    deployment = _k8s("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    image_user = next(a for k, a in reversed(_dockerfile()) if k == "USER").split(":")[0]
    assert pod["securityContext"]["runAsUser"] == int(image_user)
    (container,) = pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for probe, path in (
        ("startupProbe", SCRIPT_HEALTH),
        ("readinessProbe", HEALTH),
        ("livenessProbe", HEALTH),
    ):
        check = container[probe]["httpGet"]
        assert check["path"] == path, probe
        assert ports.get(check["port"], check["port"]) == APP_PORT, probe
    resources = container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


def test_service_selects_the_pods_on_the_app_port() -> None:
    deployment, service = _k8s("Deployment"), _k8s("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named.get(port["targetPort"], port["targetPort"]) == APP_PORT


def test_gateway_api_route_keeps_a_browser_on_one_pod() -> None:
    """The Gateway API kinds, which kubernetes-validate has no schema for."""
    gateway_class, gateway, route = _k8s("GatewayClass"), _k8s("Gateway"), _k8s("HTTPRoute")
    service = _k8s("Service")
    for resource in (gateway_class, gateway, route):
        assert resource["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway_class["spec"]["controllerName"] == (
        "gateway.envoyproxy.io/gatewayclass-controller"
    )
    assert gateway["spec"]["gatewayClassName"] == gateway_class["metadata"]["name"]
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    (parent,) = route["spec"]["parentRefs"]
    assert parent["name"] == gateway["metadata"]["name"]
    assert parent["sectionName"] in listeners
    (rule,) = route["spec"]["rules"]
    # field names as the HTTPRoute CRD has them (a typo would be dropped by the API server)
    assert set(rule) <= {
        "name",
        "matches",
        "filters",
        "backendRefs",
        "timeouts",
        "retry",
        "sessionPersistence",
    }
    (backend,) = rule["backendRefs"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"] == service["spec"]["ports"][0]["port"]
    persistence = rule["sessionPersistence"]
    assert set(persistence) <= {
        "sessionName",
        "absoluteTimeout",
        "idleTimeout",
        "type",
        "cookieConfig",
    }
    assert persistence["type"] == "Cookie"
    assert len(persistence["sessionName"]) <= 128
    lifetime = persistence["cookieConfig"]["lifetimeType"]
    assert lifetime in {"Session", "Permanent"}
    if lifetime == "Permanent":
        assert GATEWAY_DURATION.match(persistence["absoluteTimeout"])
    assert set(rule["timeouts"]) <= {"request", "backendRequest"}
    assert all(GATEWAY_DURATION.match(value) for value in rule["timeouts"].values())
    assert rule["timeouts"]["request"] == "0s"  # no route timeout: websockets stay open


def test_kustomization_lists_every_manifest_and_the_image() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    (container,) = _k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    (image,) = kustomization["images"]
    assert container["image"].split(":")[0] == image["name"]


# --- the hosting configuration --------------------------------------------------------------


def test_hosting_configuration() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["enableXsrfProtection"] is True and server["enableCORS"] is True
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["runner"]["postScriptGC"] is False and server["fileWatcherType"] == "none"
    # uploads: the proxy takes what Streamlit takes, photos ask for less
    from explorer.inputs.preprocess import MAX_PHOTO_UPLOAD_MB

    assert server["maxUploadSize"] == 200
    assert 0 < MAX_PHOTO_UPLOAD_MB < server["maxUploadSize"]
    if TEMPLATE.is_file():
        sizes = re.findall(r"client_max_body_size\s+(\d+)m;", TEMPLATE.read_text())
        assert sizes == [str(server["maxUploadSize"])]
    assert re.fullmatch(r"\d+mb", server["maxCacheDataSize"])
    assert 0 < server["disconnectedSessionTTL"] <= 600


def _cache_decorators(path: Path) -> dict[str, dict[str, Any]]:
    """Each function decorated with st.cache_resource/st.cache_data: its keyword arguments."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                target = call.func if call else decorator
                if isinstance(target, ast.Attribute) and target.attr in {
                    "cache_resource",
                    "cache_data",
                }:
                    keywords = {k.arg: k.value for k in call.keywords} if call else {}
                    found[node.name] = {
                        k: ast.literal_eval(v) for k, v in keywords.items() if k == "max_entries"
                    }
    return found


def test_one_student_cannot_fill_the_server() -> None:
    """Every cache the pages keep for all sessions has a bound, and uploads are capped.

    The shared model cache is bounded by the zoo (one entry per model), every other one by
    max_entries: one student uploading many photos or weights only evicts entries.
    """
    caches = {
        f"{path.stem}.{name}": options
        for path in sorted((REPO / "pages").glob("*.py"))
        for name, options in _cache_decorators(path).items()
    }
    assert caches["common.cached_model"] == {}  # keyed by zoo name only: at most len(ZOO)
    assert caches["image.cached_own_model"]["max_entries"] <= 2
    # Captures, maps, visualisations: the heavy-work scheduler's one cache, bounded in bytes.
    from explorer.hosting.scheduler import default_scheduler

    assert default_scheduler().cache.max_bytes <= 2 * 2**30
    unbounded = [name for name, options in caches.items() if "max_entries" not in options]
    assert unbounded == ["common.cached_model"]
    for page in ("image.py", "lab.py"):
        source = (REPO / "pages" / page).read_text()
        assert source.count("max_upload_size=MAX_PHOTO_UPLOAD_MB") == 1, page


def test_the_script_health_check_is_on_for_the_start_up_probes() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["scriptHealthCheckEnabled"] is True
