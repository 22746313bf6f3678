#!/usr/bin/env python3
"""Static checks of everything under deploy/ and helm/ (run by scripts/test-deploy.sh).

No Docker engine and no cluster are needed: the real Helm v4 library (helm-sdkpy and
helm-python-sdk) lints and renders the chart, kubectl's built-in kustomize builds the
manifests, every object is validated against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict, at the chart's kubeVersion floor and at the newest bundled
version) and custom resources against their CRD schemas (@kubernetes-models), Docker Compose's
own parser checks the compose file, hadolint the Dockerfile, promtool the Prometheus config,
and the connector's `check-config` every configuration file the stack and the chart mount.

Each check prints `ok   NAME` or `FAIL NAME` with the reason; the last line is
`N passed, N failed`. `--sync` first regenerates what is derived (chart README table,
kustomize base and components, the chart's copies of dashboards/), then checks.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import traceback
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart_readme  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "ads-connector"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
KUSTOMIZE = DEPLOY / "k8s"
DASHBOARDS = ROOT / "dashboards"
RELEASE = "ads-connector"
NAMESPACE = "ads-connector"
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
CRD_GROUPS = ("monitoring.coreos.com/", "keda.sh/")


class Failure(Exception):
    """A check failed; the message says why."""


def fail_if(problems: list[str]) -> None:
    if problems:
        raise Failure("\n".join(problems))


def run(cmd: list[str], *, stdin: str | None = None, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, cwd=cwd)


class Checks:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.passed = 0
        self.failed = 0
        self._renders: dict[str, list[dict]] = {}

    # -- bookkeeping -------------------------------------------------------------------------

    def check(self, name: str, fn) -> None:
        try:
            detail = fn()
        except Failure as error:
            self.failed += 1
            print(f"FAIL {name}")
            for line in str(error).splitlines() or ["(no detail)"]:
                print(f"       {line}")
        except Exception:  # a bug in a check is a failure too, with its traceback
            self.failed += 1
            print(f"FAIL {name} (the check itself crashed)")
            for line in traceback.format_exc().splitlines():
                print(f"       {line}")
        else:
            self.passed += 1
            print(f"ok   {name}" + (f" ({detail})" if detail else ""))
        sys.stdout.flush()

    # -- tools -------------------------------------------------------------------------------

    def check_config(self, toml_text: str, label: str) -> str:
        """Runs the connector's `check-config` on a configuration, in a clean environment."""
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(toml_text)
            path = f.name
        try:
            env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
            result = run([self.args.bin, "check-config", "--config", path], env=env)
        finally:
            os.unlink(path)
        if result.returncode != 0:
            raise Failure(f"{label}: check-config refused it:\n{result.stdout}{result.stderr}")
        return result.stdout.strip().split(": ", 1)[-1]

    def k8s_validate(self, objects: list[tuple[str, dict]]) -> str:
        """Core objects against the Kubernetes OpenAPI schemas (strict), CRs against their CRDs."""
        import kubernetes_validate

        floor = kube_floor()
        versions = [floor, kubernetes_validate.utils.latest_version()]
        problems, crs = [], []
        for name, obj in objects:
            if obj.get("apiVersion", "").startswith(CRD_GROUPS):
                crs.append({"name": name, "object": obj})
                continue
            for version in versions:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    problems.append(f"{name} (Kubernetes {version}): {path}: {e.message}")
                except kubernetes_validate.SchemaNotFoundError as e:
                    problems.append(f"{name}: {e.message}")
        if crs:
            env = dict(os.environ, ADS_DEPLOY_NODE_MODULES=self.args.node_modules)
            result = run(["node", str(ROOT / "tests/deploy/validate_crds.mjs")], stdin=json.dumps(crs), env=env)
            if result.returncode != 0:
                problems += [line for line in (result.stdout + result.stderr).splitlines() if not line.startswith("ok")]
        fail_if(problems)
        return f"{len(objects) - len(crs)} objects on Kubernetes {', '.join(versions)}, {len(crs)} custom resources"

    # -- Helm --------------------------------------------------------------------------------

    def values_of(self, path: Path) -> dict:
        import helm_python

        return helm_python.values_from_yaml(path.read_text()) or {}

    def render(self, values: dict, key: str | None = None) -> dict[str, str]:
        import helm_python

        chart = helm_python.Chart.load(str(CHART))
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)

    def objects(self, ci: Path) -> list[dict]:
        """Rendered objects of one ci values file, each with `__template__` set."""
        if ci.name not in self._renders:
            import helm_python

            try:
                rendered = self.render(self.values_of(ci))
            except helm_python.HelmError as e:
                raise Failure(f"helm template failed: {e}") from None
            objs = []
            for template, text in sorted(rendered.items()):
                if template.endswith("NOTES.txt"):
                    continue
                for doc in yaml.safe_load_all(text):
                    if doc:
                        doc["__template__"] = template
                        objs.append(doc)
            self._renders[ci.name] = objs
            self._renders[ci.name + ":raw"] = rendered  # type: ignore[assignment]
        return self._renders[ci.name]

    def helm_checks(self) -> None:
        import helm_sdkpy
        import helm_python

        def lint_sdkpy(values_file: Path | None):
            def fn():
                with tempfile.TemporaryDirectory() as tmp:
                    chart = CHART
                    if values_file is not None:
                        # helm-sdkpy lints a chart with its own values: lint a copy whose
                        # values.yaml is the scenario (merged by Helm's own coalescing).
                        chart = Path(tmp) / "ads-connector"
                        shutil.copytree(CHART, chart)
                        merged = helm_python.Chart.load(str(CHART)).merge_values(self.values_of(values_file))
                        (chart / "values.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
                    report = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(str(chart)))
                bad = [m for m in report.get("Messages") or [] if m.get("Severity", 0) >= 2]
                if bad or report.get("Errors"):
                    # helm-sdkpy does not serialise the error texts: ask helm-python-sdk for them.
                    again = helm_python.lint(str(CHART), self.values_of(values_file) if values_file else None, strict=True)
                    raise Failure(json.dumps(again.get("messages"), indent=1))
                info = [m for m in report.get("Messages") or [] if m.get("Severity", 0) == 1]
                return f"{len(info)} info message(s), no warning or error"
            return fn

        def lint_strict(values_file: Path):
            def fn():
                report = helm_python.lint(str(CHART), self.values_of(values_file), strict=True,
                                          kube_version=f"v{kube_floor()}")
                bad = [m for m in report.get("messages") or [] if m["severity"] >= 2] + (report.get("errors") or [])
                fail_if([json.dumps(m) for m in bad])
                return f"strict, Kubernetes v{kube_floor()}"
            return fn

        self.check("helm: lint, default values (helm-sdkpy, Helm v4)", lint_sdkpy(None))
        for ci in CI_VALUES:
            self.check(f"helm: lint {ci.name} (helm-sdkpy)", lint_sdkpy(ci))
            self.check(f"helm: lint --strict {ci.name} (helm-python-sdk)", lint_strict(ci))
        for ci in CI_VALUES:
            self.check(f"helm: render {ci.name} and validate against Kubernetes schemas",
                       lambda ci=ci: self.k8s_validate([(f"{o['kind']}/{o['metadata']['name']}", strip(o)) for o in self.objects(ci)]))
            self.check(f"helm: {ci.name}: pod security, probes, mounts, selectors", lambda ci=ci: self.policy(ci))
            self.check(f"helm: {ci.name}: rendered config.toml passes check-config", lambda ci=ci: self.chart_config(ci))
        self.check("helm: values.schema.json and template guards refuse bad values", self.negative_values)
        self.check("helm: README lists every value (generated from `# --` comments)", self.readme)
        self.check("helm: values config keys match docs/configuration.md", self.config_keys)
        self.check("helm: chart copies of dashboards/ are byte-identical", self.dashboards_synced)
        self.check("helm: Chart.yaml appVersion is the crate version", self.app_version)

    def policy(self, ci: Path) -> str:
        objs = self.objects(ci)
        rendered = self._renders[ci.name + ":raw"]
        values = helm_merged(self.values_of(ci))
        problems: list[str] = []
        deployments = [o for o in objs if o["kind"] == "Deployment"]
        if len(deployments) != 1:
            raise Failure(f"expected one Deployment, got {len(deployments)}")
        dep = deployments[0]
        pod = dep["spec"]["template"]
        spec = pod["spec"]
        pod_labels = pod["metadata"]["labels"]
        problems += pod_security(f"Deployment {dep['metadata']['name']}", spec)
        container = spec["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        # The config: from the rendered ConfigMap, or (existingConfigMap) nothing to read.
        cms = [o for o in objs if o["kind"] == "ConfigMap" and "config.toml" in o.get("data", {})]
        config = tomllib.loads(cms[0]["data"]["config.toml"]) if cms else None
        # Probes on the operations port.
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
            p = container.get(probe)
            if not p:
                problems.append(f"no {probe}")
                continue
            if p["httpGet"]["path"] != path or p["httpGet"]["port"] not in ports:
                problems.append(f"{probe} must GET {path} on a named container port, got {p['httpGet']}")
        if config is not None:
            listen_port = int(config["http"]["listen"].rsplit(":", 1)[1])
            if ports.get("http") != listen_port:
                problems.append(f"container port http {ports.get('http')} != http.listen {config['http']['listen']}")
            drain = config.get("shutdown", {}).get("drain_timeout_s", 20)
            if spec["terminationGracePeriodSeconds"] <= drain:
                problems.append(f"terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']} <= drain_timeout_s {drain}")
            # Every secret file the config names lives in a read-only volume mount.
            mounts = {m["mountPath"].rstrip("/"): m for m in container.get("volumeMounts", [])}
            files = [config["nhs_api"].get("api_key_file"), config["nhs_api"].get("private_key_file"),
                     config["kafka"].get("sasl_password_file"), config["kafka"].get("ssl_key_password_file")]
            files += [v for k, v in config["kafka"].get("properties", {}).items() if k.endswith(".location")]
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for f in filter(None, files):
                mount = mounts.get(str(Path(f).parent))
                if not mount or not mount.get("readOnly"):
                    problems.append(f"{f} is not in a read-only volume mount")
                    continue
                vol = volumes[mount["name"]]
                source = vol.get("secret") or vol.get("configMap") or {}
                items = source.get("items")
                if items and Path(f).name not in {i["path"] for i in items}:
                    problems.append(f"{f}: volume {mount['name']} does not project {Path(f).name}")
            # Rollout on config change: the checksum is the hash of the rendered ConfigMap.
            if values["deployment"]["rolloutConfigMap"]:
                want = hashlib.sha256(rendered[f"{RELEASE}/templates/configmap.yaml"].encode()).hexdigest()
                got = pod["metadata"].get("annotations", {}).get("checksum/config")
                if got != want:
                    problems.append(f"checksum/config {got} != sha256 of the ConfigMap {want}")
        else:
            if "checksum/config" in pod["metadata"].get("annotations", {}):
                problems.append("checksum/config set although the ConfigMap is not the chart's")
        # Secrets: whole-directory mounts, read-only, never subPath; no secret in env values.
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for m in c.get("volumeMounts", []):
                if "subPath" in m or "subPathExpr" in m:
                    problems.append(f"{c['name']}: volume mount {m['name']} uses subPath (rotation would not reach the pod)")
            for e in c.get("env", []):
                if re.search(r"(PASSWORD|SECRET|PRIVATE|TOKEN)", e["name"]) and "value" in e:
                    problems.append(f"{c['name']}: env {e['name']} carries a literal value")
        for v in spec.get("volumes", []):
            if "secret" in v:
                mode = v["secret"].get("defaultMode")
                if mode is not None and mode & 0o007:
                    problems.append(f"secret volume {v['name']} is world-readable (mode {oct(mode)})")
        # Replicas belong to the autoscaler when there is one.
        autoscaled = any(o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject") for o in objs)
        if autoscaled == ("replicas" in dep["spec"]):
            problems.append("spec.replicas must be set exactly when no autoscaler owns it")
        for o in objs:
            if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
                if o["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
                    problems.append(f"{o['kind']} targets {o['spec']['scaleTargetRef']['name']}")
        # Selectors find the pods; monitors find the Service or the pods on the named port.
        selectors = {o["kind"]: o["spec"]["selector"] for o in objs if o["kind"] in ("Service", "PodDisruptionBudget")}
        for kind, sel in selectors.items():
            sel = sel.get("matchLabels", sel)
            if not set(sel.items()) <= set(pod_labels.items()):
                problems.append(f"{kind} selector {sel} does not match the pod labels")
        services = [o for o in objs if o["kind"] == "Service"]
        for o in objs:
            if o["kind"] == "ServiceMonitor":
                sel = o["spec"]["selector"]["matchLabels"]
                if not services or not set(sel.items()) <= set(services[0]["metadata"]["labels"].items()):
                    problems.append("ServiceMonitor selector does not match the Service")
                if o["spec"]["endpoints"][0]["port"] not in {p["name"] for p in services[0]["spec"]["ports"]}:
                    problems.append("ServiceMonitor port is not a Service port name")
            if o["kind"] == "PodMonitor":
                if not set(o["spec"]["selector"]["matchLabels"].items()) <= set(pod_labels.items()):
                    problems.append("PodMonitor selector does not match the pods")
                if o["spec"]["podMetricsEndpoints"][0]["port"] not in ports:
                    problems.append("PodMonitor port is not a container port name")
            if o["kind"] == "Pod":  # the Helm test hook
                if o["metadata"].get("annotations", {}).get("helm.sh/hook") != "test":
                    problems.append(f"Pod {o['metadata']['name']} is not a test hook")
                problems += pod_security(f"test Pod {o['metadata']['name']}", o["spec"])
                url = o["spec"]["containers"][0]["args"][-1]
                svc = services[0]
                want = f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}/readyz"
                if url != want:
                    problems.append(f"test pod checks {url}, expected {want}")
            image = next((c["image"] for c in o.get("spec", {}).get("containers", [])), None) if o["kind"] == "Pod" else None
            if image and (image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]):
                problems.append(f"{o['kind']} image {image} is not pinned")
        if container["image"].endswith(":latest"):
            problems.append("connector image uses :latest")
        res = container.get("resources", {})
        if not res.get("requests") or not res.get("limits", {}).get("memory"):
            problems.append("container resources need requests and a memory limit")
        sas = [o for o in objs if o["kind"] == "ServiceAccount"]
        if sas and sas[0].get("automountServiceAccountToken") is not False:
            problems.append("ServiceAccount mounts its token")
        fail_if(problems)
        kinds = sorted({o["kind"] for o in objs})
        return ", ".join(kinds)

    def chart_config(self, ci: Path) -> str:
        cms = [o for o in self.objects(ci) if o["kind"] == "ConfigMap" and "config.toml" in o.get("data", {})]
        if not cms:
            return "existingConfigMap: no config rendered"
        return self.check_config(cms[0]["data"]["config.toml"], ci.name)

    def negative_values(self) -> str:
        import helm_python

        cases = {
            "misspelt key config.kafka.bootstrap_server": {"config": {"kafka": {"bootstrap_server": "k:9092"}}},
            "unknown top-level key replicaCount": {"replicaCount": 3},
            "negative deployment.replicaCount": {"deployment": {"replicaCount": -1}},
            "unknown environment": {"config": {"nhs_api": {"environment": "production"}}},
            "a secret in kafka.properties": {"config": {"kafka": {"properties": {"sasl.password": "x"}}}},
            "a number in kafka.properties": {"config": {"kafka": {"properties": {"fetch.wait.max.ms": 10}}}},
            "grace period not above the drain deadline": {"deployment": {"terminationGracePeriodSeconds": 20}},
            "HPA and KEDA together": {"autoscaling": {"enabled": True}, "keda": {"enabled": True}},
            "ServiceMonitor and PodMonitor together": {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}},
            "SASL without a Secret": {"kafka": {"sasl": {"enabled": True, "username": "u"}}},
            "custom environment without base_url": {"config": {"nhs_api": {"environment": "custom"}}},
            "int without batch.mode (the go-live guard)": {"config": {"batch": {"mode": None}}},
            "PrometheusRule with no rule at all": {"metrics": {"prometheusRule": {"enabled": True, "includeShippedRules": False}}},
            "MESH without a Secret": {"config": {"mesh": {"url": "https://mesh.example", "mailbox": "X26ABC2",
                                                           "errors_topic": "ads.dps-errors"}}},
            "a MESH secret path in config.mesh": {"mesh": {"credentials": {"existingSecret": "m"}},
                                                  "config": {"mesh": {"url": "https://mesh.example",
                                                                      "mailbox": "X26ABC2",
                                                                      "errors_topic": "e",
                                                                      "password_file": "/p"}}},
        }
        accepted = []
        for label, values in cases.items():
            try:
                self.render(values)
            except helm_python.HelmError:
                continue
            accepted.append(label)
        fail_if([f"accepted: {label}" for label in accepted])
        return f"{len(cases)} bad inputs refused"

    def readme(self) -> str:
        readme = CHART / "README.md"
        missing = chart_readme.undocumented(CHART / "values.yaml")
        want = chart_readme.updated_readme(readme.read_text(), chart_readme.render_table(CHART / "values.yaml"))
        problems = [f"value without a `# --` comment: {m}" for m in missing]
        if readme.read_text() != want:
            problems.append("helm/ads-connector/README.md is out of date: run scripts/test-deploy.sh --sync")
        fail_if(problems)
        return f"{want.count(chr(10) + '| `')} keys"

    def config_keys(self) -> str:
        """The chart's `config` schema offers exactly the documented keys (less those the chart owns)."""
        # transactional_id must differ per replica, so it cannot live in the shared ConfigMap: it
        # is set per pod through ADS__KAFKA__TRANSACTIONAL_ID (see docs/operations.md).
        owned = {"http.listen", "nhs_api.api_key_file", "nhs_api.private_key_file", "kafka.sasl_password_file",
                 "kafka.ssl_key_password_file", "kafka.transactional_id"}
        # The chart writes the [mesh] secret paths from `mesh.credentials`.
        owned |= {f"mesh.{k}" for k in ("password_file", "shared_key_file", "client_cert_file", "client_key_file",
                                        "ca_file")}
        # Every key, [mesh] included, is a row of the generated docs/configuration.md (its test
        # keeps it equal to the code's Setting tables).
        reference = (ROOT / "docs/configuration.md").read_text().split("\n## Environments", 1)[0]
        documented = set(re.findall(r"^\| `([a-z_]+(?:\.[a-z_]+)+)` \|", reference, re.M))
        schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["config"]

        def keys(node, prefix=""):
            for k, v in node.get("properties", {}).items():
                path = f"{prefix}.{k}" if prefix else k
                # An optional table (`anyOf: [null, object]`) is walked like a table.
                table = v if v.get("type") == "object" else next(
                    (b for b in v.get("anyOf", []) if b.get("type") == "object"), None)
                if table is not None and "properties" in table:
                    yield from keys(table, path)
                else:
                    yield path

        offered = set(keys(schema))
        problems = [f"documented key missing from the chart's config schema: {k}" for k in sorted(documented - owned - offered)]
        problems += [f"chart config key not in docs/configuration.md: {k}" for k in sorted(offered - documented)]
        problems += [f"the chart must not offer {k}: it writes it itself" for k in sorted(offered & owned)]
        fail_if(problems)
        return f"{len(offered)} keys"

    def dashboards_synced(self) -> str:
        problems = []
        for src, dst in expected_chart_files().items():
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                problems.append(f"{dst.relative_to(ROOT)} differs from {src.relative_to(ROOT)}: run scripts/test-deploy.sh --sync")
        expected = set(expected_chart_files().values())
        for folder in ("dashboards", "rules"):
            for f in (CHART / "files" / folder).glob("*"):
                if f.name != "README.md" and f not in expected:
                    problems.append(f"{f.relative_to(ROOT)} has no source in dashboards/: run scripts/test-deploy.sh --sync")
        fail_if(problems)
        n = len(expected_chart_files())
        return f"{n} file(s)" if n else "dashboards/ has no dashboard or rule file yet"

    def app_version(self) -> str:
        manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
        cargo = manifest["package"]["version"]
        if isinstance(cargo, dict):  # `version.workspace = true`
            cargo = manifest["workspace"]["package"]["version"]
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        if str(chart["appVersion"]) != cargo:
            raise Failure(f"appVersion {chart['appVersion']} != Cargo.toml version {cargo}")
        return cargo

    # -- kustomize ---------------------------------------------------------------------------

    def kustomize_checks(self) -> None:
        dirs = [KUSTOMIZE / "base"] + sorted(p for p in (KUSTOMIZE / "overlays").iterdir() if p.is_dir())
        for d in dirs:
            self.check(f"kustomize: build {d.relative_to(ROOT)} and validate against Kubernetes schemas",
                       lambda d=d: self.k8s_validate([(f"{o['kind']}/{o['metadata']['name']}", o) for o in kustomize(d)]))
            self.check(f"kustomize: {d.relative_to(ROOT)}: config.toml passes check-config", lambda d=d: self.kustomize_config(d))
        self.check("kustomize: base and components equal the chart's default rendering", self.kustomize_equivalence)

    def kustomize_config(self, d: Path) -> str:
        cms = [o for o in kustomize(d) if o["kind"] == "ConfigMap" and "config.toml" in o.get("data", {})]
        if len(cms) != 1:
            raise Failure(f"expected one ConfigMap with config.toml, got {len(cms)}")
        dep = next(o for o in kustomize(d) if o["kind"] == "Deployment")
        vol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
        if vol["configMap"]["name"] != cms[0]["metadata"]["name"]:
            raise Failure("the Deployment does not mount the generated ConfigMap")
        spec = dep["spec"]["template"]["spec"]
        problems = pod_security(f"{d.name} Deployment", spec)
        config = tomllib.loads(cms[0]["data"]["config.toml"])
        mounts = {m["mountPath"].rstrip("/") for c in spec["containers"] for m in c.get("volumeMounts", [])}
        files = [config["nhs_api"].get("api_key_file"), config["nhs_api"].get("private_key_file"),
                 config["kafka"].get("sasl_password_file")]
        for f in filter(None, files):
            if str(Path(f).parent) not in mounts:
                problems.append(f"{f} is not in a mounted volume")
        fail_if(problems)
        return self.check_config(cms[0]["data"]["config.toml"], str(d))

    def kustomize_equivalence(self) -> str:
        want = chart_plain(self)
        problems = diff_objects("base", want["base"], [normalise_kustomized(o) for o in kustomize(KUSTOMIZE / "base")])
        for component in ("service-monitor", "network-policy"):
            d = KUSTOMIZE / "components" / component
            got = [o for f in sorted(d.glob("*.yaml")) if f.name != "kustomization.yaml"
                   for o in yaml.safe_load_all(f.read_text()) if o]
            problems += diff_objects(f"components/{component}", want[component], got)
        fail_if(problems + (["run scripts/test-deploy.sh --sync to regenerate them"] if problems else []))
        return f"{len(want['base'])} base objects, 2 components"

    # -- compose -----------------------------------------------------------------------------

    def compose_checks(self) -> None:
        self.check("compose: docker compose config, every profile (Compose v2 parser and schema)", self.compose_config)
        self.check("compose: build contexts, mounted files and images", self.compose_files)
        self.check("deploy: config.example.toml passes check-config", lambda: self.check_config((DEPLOY / "config.example.toml").read_text(), "config.example.toml"))
        self.check("compose: connector.toml passes check-config", lambda: self.check_config((DEPLOY / "compose/connector.toml").read_text(), "connector.toml"))
        self.check("compose: the connector and sandbox share keys, ports and names with connector.toml", self.compose_wiring)
        self.check("compose: promtool check config prometheus.yml", self.compose_prometheus)
        self.check("compose: Grafana provisioning points at the mounted dashboards", self.compose_grafana)

    def compose_model(self) -> dict:
        result = run([self.args.docker_compose, "-f", str(COMPOSE), "--profile", "*", "config", "--format", "json"],
                     env=dict(os.environ, DOCKER_CONFIG=tempfile.gettempdir()))
        if result.returncode != 0:
            raise Failure(result.stderr or result.stdout)
        return json.loads(result.stdout)

    def compose_config(self) -> str:
        result = run([self.args.docker_compose, "-f", str(COMPOSE), "--profile", "*", "config", "--quiet"])
        if result.returncode != 0 or result.stderr.strip():
            raise Failure(result.stderr or result.stdout)
        model = self.compose_model()
        profiles = sorted({p for s in model["services"].values() for p in s.get("profiles", [])})
        return f"{len(model['services'])} services, profiles {', '.join(profiles)}"

    def compose_files(self) -> str:
        model = self.compose_model()
        problems = []
        for name, svc in model["services"].items():
            build = svc.get("build")
            if build:
                ctx = Path(build["context"])
                if not (ctx / build.get("dockerfile", "Dockerfile")).exists():
                    problems.append(f"{name}: no Dockerfile {build.get('dockerfile')} in {ctx}")
            else:
                image = svc.get("image", "")
                tag = image.rsplit("/", 1)[-1]
                if ":" not in tag or tag.endswith(":latest"):
                    problems.append(f"{name}: image {image!r} is not pinned to a version")
            for v in svc.get("volumes", []):
                if v["type"] == "bind" and not Path(v["source"]).exists():
                    problems.append(f"{name}: bind mount source {v['source']} does not exist")
        connector = model["services"]["connector"]
        if not connector.get("read_only") or "ALL" not in connector.get("cap_drop", []):
            problems.append("connector: must run with a read-only root filesystem and no capabilities")
        fail_if(problems)
        return f"{sum(len(s.get('volumes', [])) for s in model['services'].values())} mounts"

    def compose_wiring(self) -> str:
        model = self.compose_model()
        cfg = tomllib.loads((DEPLOY / "compose/connector.toml").read_text())
        connector, sandbox, keygen = (model["services"][n] for n in ("connector", "sandbox", "keygen"))
        problems = []
        key_mount = next(v["target"] for v in connector["volumes"] if v.get("source") == "keys")
        for key in ("api_key_file", "private_key_file"):
            if str(Path(cfg["nhs_api"][key]).parent) != key_mount:
                problems.append(f"nhs_api.{key} {cfg['nhs_api'][key]} is not in the keys volume ({key_mount})")
        script = " ".join(keygen["command"])
        kid = cfg["nhs_api"]["kid"]
        if f"--kid {kid}" not in script or f"/keys/{Path(cfg['nhs_api']['private_key_file']).name}" not in script:
            problems.append(f"keygen does not write the key of kid {kid} that connector.toml names")
        api_key = re.search(r"printf (\S+) > /keys/api-key", script)
        app = sandbox["command"][sandbox["command"].index("--app") + 1]
        if not api_key or not app.startswith(api_key.group(1) + "="):
            problems.append(f"sandbox --app {app} does not register the API key keygen writes")
        public = sandbox["command"][sandbox["command"].index("--public-url") + 1]
        if cfg["nhs_api"]["token_url"] != f"{public}/oauth2/token":
            problems.append(f"token_url {cfg['nhs_api']['token_url']} is not the sandbox's {public}/oauth2/token (the JWT aud)")
        if not cfg["nhs_api"]["base_url"].startswith(public):
            problems.append("base_url does not point at the sandbox")
        listen = cfg["http"]["listen"].rsplit(":", 1)[1]
        if not any(str(p.get("target")) == listen for p in connector.get("ports", [])):
            problems.append(f"the connector does not publish http.listen port {listen}")
        if cfg["kafka"]["bootstrap_servers"] != "kafka:9092":
            problems.append("bootstrap_servers is not the compose broker kafka:9092")
        init = " ".join(model["services"]["kafka-init"]["command"])
        for topic in cfg["kafka"]["topics"] + [cfg["kafka"]["ack_topic"], cfg["kafka"]["dead_letter_topic"]]:
            if f"{topic}:" not in init:
                problems.append(f"kafka-init does not create {topic}")
        prom = yaml.safe_load((DEPLOY / "compose/prometheus/prometheus.yml").read_text())
        targets = [t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
        if f"connector:{listen}" not in targets:
            problems.append(f"Prometheus does not scrape connector:{listen}")
        fail_if(problems)
        return "keys, kid, JWT audience, topics, ports"

    def compose_prometheus(self) -> str:
        if not self.args.promtool:
            raise Failure("promtool not found (scripts/test-deploy.sh installs Debian's prometheus package)")
        cfg = DEPLOY / "compose/prometheus/prometheus.yml"
        # promtool resolves rule_files on this machine: point the container path at the folder
        # compose mounts there, so the rule files are loaded and checked too.
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "prometheus.yml"
            local.write_text(cfg.read_text().replace("/etc/prometheus/dashboards/", f"{DASHBOARDS}/"))
            result = run([self.args.promtool, "check", "config", str(local)])
        if result.returncode != 0:
            raise Failure(result.stdout + result.stderr)
        # Every alert rule file in dashboards/ is one of the files Prometheus loads.
        globs = yaml.safe_load(cfg.read_text())["rule_files"]
        problems = []
        for rule_file in rule_files():
            inside = "/etc/prometheus/dashboards/" + str(rule_file.relative_to(DASHBOARDS))
            if not any(Path(inside).match(g) and g.count("/") == inside.count("/") for g in globs):
                problems.append(f"{rule_file.relative_to(ROOT)} is not matched by prometheus.yml rule_files")
            result = run([self.args.promtool, "check", "rules", str(rule_file)])
            if result.returncode != 0:
                problems.append(result.stdout + result.stderr)
        fail_if(problems)
        return f"{len(rule_files())} rule file(s) in dashboards/"

    def compose_grafana(self) -> str:
        model = self.compose_model()
        grafana = model["services"]["grafana"]
        targets = {Path(v["source"]).resolve(): v["target"] for v in grafana["volumes"] if v["type"] == "bind"}
        dash_target = targets.get(DASHBOARDS.resolve())
        prov = yaml.safe_load((DEPLOY / "compose/grafana/provisioning/dashboards/ads-connector.yaml").read_text())
        ds = yaml.safe_load((DEPLOY / "compose/grafana/provisioning/datasources/prometheus.yaml").read_text())
        problems = []
        if prov["providers"][0]["options"]["path"] != dash_target:
            problems.append(f"dashboard provider path {prov['providers'][0]['options']['path']} != mount {dash_target}")
        if ds["datasources"][0]["url"] != "http://prometheus:9090":
            problems.append("the datasource is not the compose Prometheus")
        fail_if(problems)
        return f"dashboards from {dash_target}"

    # -- Dockerfile --------------------------------------------------------------------------

    def dockerfile_checks(self) -> None:
        self.check("dockerfile: hadolint (no finding at any level)", self.hadolint)
        self.check("dockerfile: stages, non-root user, entrypoint, build context", self.dockerfile_structure)

    def hadolint(self) -> str:
        result = run([self.args.hadolint, "--failure-threshold", "style", str(DEPLOY / "Dockerfile")])
        if result.returncode != 0 or result.stdout.strip():
            raise Failure(result.stdout + result.stderr)
        return run([self.args.hadolint, "--version"]).stdout.strip()

    def dockerfile_structure(self) -> str:
        text = (DEPLOY / "Dockerfile").read_text()
        lines = join_continuations(text)
        stages: list[dict] = []
        for line in lines:
            word, _, rest = line.partition(" ")
            word = word.upper()
            if word == "FROM":
                m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
                stages.append({"from": m.group(1), "name": m.group(2), "lines": []})
            elif stages:
                stages[-1]["lines"].append((word, rest))
        problems = []
        if len(stages) < 2:
            problems.append("not a multi-stage build")
        builder, final = stages[0], stages[-1]
        build_run = " ".join(r for w, r in builder["lines"] if w == "RUN")
        for tool in ("make", "perl"):
            if not re.search(rf"\b{tool}\b", build_run):
                problems.append(f"the builder does not install {tool} (vendored OpenSSL/librdkafka need it)")
        if "--locked" not in build_run:
            problems.append("cargo build must use --locked")
        if not re.search(r"distroless|debian:.*slim", final["from"]):
            problems.append(f"runtime base {final['from']} is neither distroless nor debian-slim")
        for stage in stages[1:]:
            d = dict(stage["lines"])
            user = d.get("USER", "")
            if not re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", user):
                problems.append(f"stage {stage['name']}: USER {user!r} is not a numeric non-root UID")
            if json.loads(d.get("ENTRYPOINT", "null") or "null") != ["/usr/local/bin/ads-connector"]:
                problems.append(f"stage {stage['name']}: ENTRYPOINT must be the ads-connector binary")
            if json.loads(d.get("CMD", "null") or "null") != ["run", "--config", "/etc/ads-connector/config.toml"]:
                problems.append(f"stage {stage['name']}: CMD must be run --config /etc/ads-connector/config.toml")
            if d.get("EXPOSE") != "9464":
                problems.append(f"stage {stage['name']}: EXPOSE 9464 (http.listen default) missing")
        # Build context: every COPY source is allowed by .dockerignore, and every file the crate
        # embeds with include_str!/include_bytes! is copied.
        allowed = dockerignore_allowlist()
        copied = []
        for stage in stages:
            for word, rest in stage["lines"]:
                if word in ("COPY", "ADD") and "--from=" not in rest:
                    if word == "ADD":
                        problems.append("use COPY, not ADD")
                    srcs = [s for s in rest.split() if not s.startswith("--")][:-1]
                    for s in srcs:
                        copied.append(s.rstrip("/"))
                        if s.rstrip("/") not in allowed:
                            problems.append(f"COPY {s}: excluded by .dockerignore")
                        if not (ROOT / s).exists():
                            problems.append(f"COPY {s}: no such path in the repository")
        sources = [*(ROOT / "src").rglob("*.rs"), *(ROOT / "crates").rglob("*.rs")]
        for src in sources:
            # Unit tests are not compiled into the image: only the code before `#[cfg(test)]`.
            code = src.read_text().split("#[cfg(test)]")[0]
            for inc in re.findall(r"include_(?:str|bytes)!\(\s*\"([^\"]+)\"", code):
                target = (src.parent / inc).resolve().relative_to(ROOT)
                if target.parts[0] not in copied:
                    problems.append(f"{src.relative_to(ROOT)} embeds {target}, which the image build does not copy")
        for path in ("target", ".git", ".venv-deploy", "demo-out"):
            if path in allowed:
                problems.append(f".dockerignore lets {path} into the build context")
        fail_if(problems)
        return f"{len(stages)} stages: " + ", ".join(s["name"] or s["from"] for s in stages)

    # -- docs --------------------------------------------------------------------------------

    def docs_checks(self) -> None:
        self.check("docs: operations.md names only paths that exist", self.docs_paths)

    def docs_paths(self) -> str:
        text = (ROOT / "docs/operations.md").read_text()
        problems = []
        paths = set(re.findall(r"`((?:deploy|helm|dashboards|scripts|docs|tests)/[^`\s]*)`", text))
        for p in sorted(paths):
            if not (ROOT / p.rstrip("/")).exists() and "*" not in p and "<" not in p:
                problems.append(f"docs/operations.md names {p}, which does not exist")
        fail_if(problems)
        return f"{len(paths)} paths"

    # -- sync --------------------------------------------------------------------------------

    def sync(self) -> None:
        for folder in ("dashboards", "rules"):
            for f in (CHART / "files" / folder).glob("*"):
                if f.name != "README.md":
                    f.unlink()
        for src, dst in expected_chart_files().items():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        readme = CHART / "README.md"
        readme.write_text(chart_readme.updated_readme(readme.read_text(), chart_readme.render_table(CHART / "values.yaml")))
        write_kustomize(self)
        print("synced: chart files/, chart README table, deploy/k8s base and components")


# -- helpers ---------------------------------------------------------------------------------


def kube_floor() -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return re.search(r"(\d+\.\d+\.\d+)", chart["kubeVersion"]).group(1)


def helm_merged(values: dict) -> dict:
    import helm_python

    return helm_python.Chart.load(str(CHART)).merge_values(values)


def strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("__")}


def pod_security(name: str, spec: dict) -> list[str]:
    """The "restricted" Pod Security Standard, plus no service-account token."""
    problems = []
    psc = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken must be false")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccompProfile must be RuntimeDefault")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot"))):
            problems.append(f"{name}/{c['name']}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"{name}/{c['name']}: runs as root")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}/{c['name']}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}/{c['name']}: readOnlyRootFilesystem must be true")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or caps.get("add"):
            problems.append(f"{name}/{c['name']}: capabilities must drop ALL and add none")
        if sc.get("privileged"):
            problems.append(f"{name}/{c['name']}: privileged")
    for v in spec.get("volumes", []):
        if "hostPath" in v:
            problems.append(f"{name}: hostPath volume {v['name']}")
    return problems


def join_continuations(text: str) -> list[str]:
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    return out


def dockerignore_allowlist() -> set[str]:
    lines = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()]
    lines = [l for l in lines if l and not l.startswith("#")]
    if lines[0] != "*":
        raise Failure(".dockerignore must start with `*` (an allow-list)")
    return {l[1:].rstrip("/") for l in lines[1:] if l.startswith("!")}


def rule_files() -> list[Path]:
    """Prometheus rule files in dashboards/ (YAML documents with a top-level `groups`)."""
    out = []
    if DASHBOARDS.is_dir():
        for f in sorted(list(DASHBOARDS.rglob("*.yml")) + list(DASHBOARDS.rglob("*.yaml"))):
            try:
                doc = yaml.safe_load(f.read_text())
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and "groups" in doc:
                out.append(f)
    return out


def expected_chart_files() -> dict[Path, Path]:
    """dashboards/ file -> its byte copy inside the chart."""
    out = {}
    if DASHBOARDS.is_dir():
        for f in sorted(DASHBOARDS.rglob("*.json")):
            out[f] = CHART / "files" / "dashboards" / f.name
    for f in rule_files():
        out[f] = CHART / "files" / "rules" / f.name
    return out


def kustomize(d: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    result = run([kubectl, "kustomize", str(d)])
    if result.returncode != 0:
        raise Failure(result.stderr)
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def drop_helm_labels(labels: dict | None) -> dict | None:
    if labels is None:
        return None
    return {k: v for k, v in labels.items() if k not in HELM_ONLY_LABELS}


def plain(obj: dict) -> dict:
    """A chart object as plain manifests have it: no Helm labels, namespace or checksum."""
    o = copy.deepcopy(strip(obj))
    o["metadata"].pop("namespace", None)
    o["metadata"]["labels"] = drop_helm_labels(o["metadata"].get("labels"))
    if o["kind"] == "Deployment":
        tpl = o["spec"]["template"]["metadata"]
        tpl["labels"] = drop_helm_labels(tpl["labels"])
        ann = tpl.get("annotations", {})
        ann.pop("checksum/config", None)
        if not ann:
            tpl.pop("annotations", None)
    if o["kind"] in ("ServiceMonitor", "PodMonitor"):
        o["spec"].pop("namespaceSelector", None)
    return o


def normalise_kustomized(obj: dict) -> dict:
    """Undo kustomize's ConfigMap name hash so objects compare with the chart's."""
    o = copy.deepcopy(obj)
    if o["kind"] == "ConfigMap":
        o["metadata"]["name"] = re.sub(r"-[a-z0-9]{10}$", "", o["metadata"]["name"])
    if o["kind"] == "Deployment":
        for v in o["spec"]["template"]["spec"].get("volumes", []):
            if "configMap" in v:
                v["configMap"]["name"] = re.sub(r"-[a-z0-9]{10}$", "", v["configMap"]["name"])
    return o


def chart_plain(checks: Checks) -> dict[str, list[dict]]:
    """The chart's default rendering as plain manifests: {"base": [...], component: [...]}."""

    def rendered(values):
        objs = []
        for template, text in sorted(checks.render(values).items()):
            if template.endswith("NOTES.txt") or "/tests/" in template:
                continue
            objs += [plain(d) for d in yaml.safe_load_all(text) if d]
        return objs

    return {
        "base": rendered({}),
        "service-monitor": [o for o in rendered({"metrics": {"serviceMonitor": {"enabled": True}}}) if o["kind"] == "ServiceMonitor"],
        "network-policy": [o for o in rendered({"networkPolicy": {"enabled": True}}) if o["kind"] == "NetworkPolicy"],
    }


GENERATED = ("# Generated from helm/ads-connector (default values) by scripts/test-deploy.sh --sync.\n"
             "# Do not edit: change the chart, then regenerate.\n")


def write_kustomize(checks: Checks) -> None:
    objs = chart_plain(checks)
    base = KUSTOMIZE / "base"
    base.mkdir(parents=True, exist_ok=True)
    files = {"ServiceAccount": "serviceaccount.yaml", "Deployment": "deployment.yaml",
             "Service": "service.yaml", "PodDisruptionBudget": "pdb.yaml"}
    by_kind = {o["kind"]: o for o in objs["base"]}
    for kind, name in files.items():
        (base / name).write_text(GENERATED + yaml.safe_dump(by_kind[kind], sort_keys=False))
    cm = by_kind["ConfigMap"]
    (base / "config.toml").write_text(cm["data"]["config.toml"])
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files.values()),
        "configMapGenerator": [{
            "name": cm["metadata"]["name"],
            "files": ["config.toml"],
            "options": {"labels": cm["metadata"]["labels"]},
        }],
    }
    (base / "kustomization.yaml").write_text(
        GENERATED + "# The ConfigMap name gets a content hash, so a config change rolls the pods.\n"
        + yaml.safe_dump(kustomization, sort_keys=False))
    for component, kind in (("service-monitor", "servicemonitor.yaml"), ("network-policy", "networkpolicy.yaml")):
        d = KUSTOMIZE / "components" / component
        d.mkdir(parents=True, exist_ok=True)
        (d / kind).write_text(GENERATED + "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs[component]))
        k = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "resources": [kind]}
        (d / "kustomization.yaml").write_text(GENERATED + yaml.safe_dump(k, sort_keys=False))


def diff_objects(where: str, want: list[dict], got: list[dict]) -> list[str]:
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    w = {key(o): strip(o) for o in want}
    g = {key(o): strip(o) for o in got}
    problems = [f"{where}: {k[0]}/{k[1]} missing" for k in sorted(set(w) - set(g))]
    problems += [f"{where}: {k[0]}/{k[1]} is not in the chart" for k in sorted(set(g) - set(w))]
    for k in sorted(set(w) & set(g)):
        if w[k] != g[k]:
            problems.append(f"{where}: {k[0]}/{k[1]} differs from the chart:\n{first_difference(w[k], g[k])}")
    return problems


def first_difference(a, b, path="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"  at {path or '.'}: chart {json.dumps(a)[:300]} vs manifest {json.dumps(b)[:300]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="the ads-connector binary (for check-config)")
    parser.add_argument("--node-modules", required=True, help="folder with the @kubernetes-models packages")
    parser.add_argument("--docker-compose", required=True, help="the docker-compose v2 binary")
    parser.add_argument("--hadolint", required=True)
    parser.add_argument("--promtool", default=shutil.which("promtool"))
    parser.add_argument("--sync", action="store_true", help="regenerate derived files first")
    args = parser.parse_args()
    checks = Checks(args)
    if args.sync:
        checks.sync()
    checks.dockerfile_checks()
    checks.compose_checks()
    checks.helm_checks()
    checks.kustomize_checks()
    checks.docs_checks()
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
