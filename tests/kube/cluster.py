"""A throwaway Kubernetes control plane for tests: etcd, kube-apiserver and
kube-controller-manager, started from binaries built by ``scripts/build-kube-bins.sh``.

This is the envtest pattern with the controller-manager added, so garbage collection,
Deployments, Jobs and CronJobs behave as in a real cluster. No kubelet runs: Pods are
created but never scheduled or started.

Everything listens on 127.0.0.1 only, on ports picked free at start-up.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import kubernetes

from tests.processes import WaitTimeout, free_port, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-kube-bins.sh"
BIN_DIR_ENV = "DRIFTLINE_KUBE_BIN_DIR"
KEEP_ENV = "DRIFTLINE_KUBE_KEEP"

REQUIRED_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "prometheus")
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# First address of the service range: the in-cluster "kubernetes" Service gets it, and the
# serving certificate must name it for in-cluster clients. Nothing ever connects to it.
KUBERNETES_SERVICE_IP = "10.0.0.1"
FRONT_PROXY_CLIENT = "front-proxy-client"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LOG_TAIL_LINES = 40
KUBECTL_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """The control plane could not be started (or a binary is missing)."""


class MissingBinaryError(ClusterError, FileNotFoundError):
    """A binary needed by the tier is not in the bin dir."""


def find_bin_dir() -> Path:
    """Locate the tier's binaries: ``$DRIFTLINE_KUBE_BIN_DIR``, else the build script's dir.

    Raises ``MissingBinaryError`` naming the fix when a needed binary is absent; the tier
    never skips silently.
    """
    env_dir = os.environ.get(BIN_DIR_ENV)
    if env_dir:
        bin_dir = Path(env_dir)
        source = f"${BIN_DIR_ENV}"
    else:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--print-dir"],
            capture_output=True,
            text=True,
            check=True,
        )
        bin_dir = Path(proc.stdout.strip().splitlines()[-1])
        source = f"{BUILD_SCRIPT.relative_to(REPO_ROOT)} --print-dir"
    missing = [name for name in REQUIRED_BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise MissingBinaryError(
            f"missing {', '.join(missing)} in {bin_dir} (from {source}); "
            f"build them with: {BUILD_SCRIPT.relative_to(REPO_ROOT)}"
        )
    return bin_dir


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGKILL when the test process dies.

    Without this, a pytest killed by a CI timeout would leave etcd and the apiserver
    running and holding their ports.
    """
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@dataclass
class Component:
    """One running control-plane process and its log file."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start the process with stdout and stderr going to the log file."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the component's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ClusterError:
        """A ClusterError describing ``what`` went wrong, with the log tail attached."""
        status = ""
        if self.process is not None and self.process.poll() is not None:
            status = f" (exited with code {self.process.returncode})"
        return ClusterError(
            f"{self.name} {what}{status}; last {LOG_TAIL_LINES} lines of {self.log_path}"
            f" (kept with {KEEP_ENV}=1):\n"
            f"{self.log_tail()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(pki: Path, name: str, cn: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={cn}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=pki,
    )  # fmt: skip


def _issue_cert(pki: Path, name: str, cn: str, ca: str, usage: str, san: str = "") -> None:
    (pki / f"{name}.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n" + (f"subjectAltName={san}\n" if san else "")
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        cwd=pki,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-set_serial", str(secrets.randbits(63)), "-days", "7",
        "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        cwd=pki,
    )  # fmt: skip


def _write_pki(pki: Path) -> None:
    """The cluster CA with the apiserver's serving cert, the front-proxy CA with its client
    cert (as kubeadm sets up), and the service-account signing key pair."""
    _make_ca(pki, "ca", "driftline-test-ca")
    _issue_cert(
        pki, "apiserver", "kube-apiserver", "ca", "serverAuth",
        san=f"IP:127.0.0.1,DNS:localhost,IP:{KUBERNETES_SERVICE_IP},DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local",
    )  # fmt: skip
    # Without a request-header CA, components that delegate authentication to the
    # apiserver (the controller-manager's health endpoint) log errors every few seconds.
    _make_ca(pki, "front-proxy-ca", "driftline-test-front-proxy-ca")
    _issue_cert(pki, "front-proxy-client", FRONT_PROXY_CLIENT, "front-proxy-ca", "clientAuth")
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _kubeconfig(server: str, ca_file: Path, user: str, token: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "driftline-test", "cluster": {"server": server,
                                                   "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "driftline-test", "context": {"cluster": "driftline-test", "user": user}}
        ],
        "current-context": "driftline-test",
    }  # fmt: skip


class KubeCluster:
    """etcd + kube-apiserver + kube-controller-manager on loopback, in a temp dir.

    Use as a context manager, or call ``start()`` and ``stop()``. After ``start()``,
    ``kubeconfig`` is an admin (system:masters) kubeconfig file and ``api_client()``
    returns a configured client for the official ``kubernetes`` package.
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        *,
        controllers: Sequence[str] = ("*",),
        start_timeout: float = 120.0,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        """Prepare (but do not start) a cluster.

        ``bin_dir`` defaults to ``find_bin_dir()``. ``controllers`` is passed to
        kube-controller-manager's ``--controllers``; the default enables what a real
        cluster enables. ``start_timeout`` bounds each component's start-up.
        """
        self.bin_dir = bin_dir if bin_dir is not None else find_bin_dir()
        for name in REQUIRED_BINARIES:
            if not os.access(self.bin_dir / name, os.X_OK):
                raise MissingBinaryError(
                    f"missing {self.bin_dir / name}; build it with "
                    f"{BUILD_SCRIPT.relative_to(REPO_ROOT)}"
                )
        self.controllers = list(controllers)
        self.start_timeout = start_timeout
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.workdir: Path | None = None
        self.components: list[Component] = []
        self.admin_token = secrets.token_hex(16)
        self._kcm_token = secrets.token_hex(16)
        self.etcd_url = ""
        self.server = ""
        self.kubeconfig: Path | None = None
        self.ca_file: Path | None = None
        self._env = dict(os.environ)
        # Components must never read the developer's own cluster config.
        self._env.pop("KUBECONFIG", None)

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> KubeCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd, kube-apiserver and kube-controller-manager and wait until each is
        healthy; on any failure everything started so far is stopped again and a
        ``ClusterError`` with the failing component's log tail is raised."""
        if self.workdir is not None:
            raise ClusterError("cluster already started")
        self.workdir = Path(tempfile.mkdtemp(prefix="driftline-kube-"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop all components (newest first) and remove the temp dir.

        With ``$DRIFTLINE_KUBE_KEEP=1`` the temp dir, logs included, is kept and its path
        printed.
        """
        for component in reversed(self.components):
            component.stop()
        self.components.clear()
        if self.workdir is not None:
            if os.environ.get(KEEP_ENV) == "1":
                print(f"kube test cluster files kept in {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- clients ---------------------------------------------------------------------

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new ``kubernetes.client.ApiClient`` authenticated as cluster admin."""
        if self.kubeconfig is None:
            raise ClusterError("cluster not started")
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl_argv(self, *args: str) -> list[str]:
        """The argv that runs the built kubectl against this cluster."""
        if self.kubeconfig is None:
            raise ClusterError("cluster not started")
        return [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]

    @property
    def env(self) -> dict[str, str]:
        """Environment for child processes, with KUBECONFIG pointing at this cluster."""
        env = dict(self._env)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    # -- internals -------------------------------------------------------------------

    def _start(self) -> None:
        assert self.workdir is not None
        pki = self.workdir / "pki"
        logs = self.workdir / "logs"
        for directory in (pki, logs, self.workdir / "etcd", self.workdir / "kcm-certs"):
            directory.mkdir(mode=0o700)
        _write_pki(pki)
        self.ca_file = pki / "ca.crt"

        # Static tokens: simplest authn that needs no cert per user. The controller-manager
        # gets its own unprivileged identity, which the RBAC bootstrap policy authorizes.
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},driftline-admin,driftline-admin,"system:masters"\n'
            f"{self._kcm_token},system:kube-controller-manager,system:kube-controller-manager\n"
        )
        tokens.chmod(0o600)

        self._start_etcd(logs)
        self._start_apiserver(pki, logs, tokens)
        self._start_controller_manager(pki, logs)

    def _start_etcd(self, logs: Path) -> None:
        assert self.workdir is not None
        client_port, peer_port, metrics_port = free_port(), free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd = Component(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=driftline-test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=driftline-test={peer_url}",
                f"--listen-metrics-urls=http://127.0.0.1:{metrics_port}",
                # Throwaway data: fsync only slows the tests down.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            logs / "etcd.log",
        )
        self._launch(etcd, self._etcd_healthy)

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:
            return bool(json.load(resp).get("health") == "true")

    def _start_apiserver(self, pki: Path, logs: Path, tokens: Path) -> None:
        assert self.workdir is not None
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        apiserver = Component(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                f"--token-auth-file={tokens}",
                "--anonymous-auth=false",
                "--authorization-mode=Node,RBAC",
                # The default plugin set (NamespaceLifecycle, ServiceAccount, LimitRanger,
                # ResourceQuota, webhooks, ...) plus what kubeadm adds.
                "--enable-admission-plugins=NodeRestriction",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # The endpoints of the "kubernetes" Service may not be loopback addresses,
                # so the default reconciler would fail (and log it) every 10 seconds.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
                *self.extra_apiserver_args,
            ],
            logs / "kube-apiserver.log",
        )
        ssl_context = ssl.create_default_context(cafile=str(pki / "ca.crt"))

        def ready() -> bool:
            request = urllib.request.Request(
                f"{self.server}/readyz",
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
            with urllib.request.urlopen(request, timeout=5, context=ssl_context) as resp:
                return bool(resp.status == 200)

        self._launch(apiserver, ready)

        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                _kubeconfig(self.server, pki / "ca.crt", "driftline-admin", self.admin_token),
                indent=2,
            )
        )
        self.kubeconfig.chmod(0o600)

    def _start_controller_manager(self, pki: Path, logs: Path) -> None:
        assert self.workdir is not None
        kcm_kubeconfig = self.workdir / "controller-manager.kubeconfig"
        kcm_kubeconfig.write_text(
            json.dumps(
                _kubeconfig(
                    self.server, pki / "ca.crt", "system:kube-controller-manager", self._kcm_token
                )
            )
        )
        kcm_kubeconfig.chmod(0o600)
        port = free_port()
        kcm = Component(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kcm_kubeconfig}",
                # Its health endpoint needs delegated authn/authz, as in kubeadm.
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                "--leader-elect=false",
                f"--controllers={','.join(self.controllers)}",
                # Each controller acts under its own service account, as in a real cluster.
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--profiling=false",
                "--v=1",
            ],
            logs / "kube-controller-manager.log",
        )
        # Self-signed serving cert generated by the controller-manager itself.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE

        def healthy() -> bool:
            url = f"https://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=5, context=insecure) as resp:
                return bool(resp.status == 200)

        self._launch(kcm, healthy)

    def _launch(self, component: Component, healthy: Callable[[], bool]) -> None:
        """Start ``component`` and poll ``healthy`` until it passes or the process dies."""
        self.components.append(component)
        component.start(env=self._env)

        def up() -> bool:
            if not component.running():
                raise component.failure("exited during start-up")
            return healthy()

        try:
            wait_for(
                up,
                self.start_timeout,
                f"{component.name} did not become healthy",
                fatal=(ClusterError,),
            )
        except WaitTimeout as exc:
            raise component.failure(f"not healthy after {self.start_timeout:g}s") from exc


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}"


@dataclass
class Kubectl:
    """Runs the built kubectl against the session cluster."""

    cluster: KubeCluster

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl ARGS``; raise ``KubectlError`` (with stderr) on failure unless
        ``check=False``."""
        argv = self.cluster.kubectl_argv(*args)
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.cluster.env,
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc
