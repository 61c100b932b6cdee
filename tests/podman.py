"""Debian 12's podman (4.3) with the CNI network backend, isolated for tests: our own plugin dirs and conflists.

``Podman(workdir, plugin_dirs)`` writes a private ``containers.conf`` and ``storage.conf`` under ``workdir`` and
runs every ``podman`` command with ``CONTAINERS_CONF`` / ``CONTAINERS_STORAGE_CONF`` /
``CONTAINERS_REGISTRIES_CONF`` pointing at them, so nothing uses the host's ``/etc/containers``,
``/etc/cni/net.d`` or ``/var/lib/containers/storage``; graphroot, conflists and the events log live in
``workdir``, runroot, libpod's tmp dir and its (file) locks in a short ``/tmp/podman-run-*`` (``workdir/run``
links to it). As root, no systemd: ``cgroupfs``, ``events_logger = "file"``, ``file``
locks (not the host-global ``/dev/shm/libpod_lock``), the ``vfs`` driver (no mounts: overlay works here
but leaves ``<graphroot>/overlay`` bind-mounted on itself until ``podman system reset``).

What stays host-global, whatever the configuration (podman 4.3 has no knob for it):

- each container's netns is ``/run/netns/netns-<uuid>`` (podman removes it after the last DEL);
- libcni caches each ADD's result in ``/var/lib/cni/results/<network>-<container id>-<ifname>`` until a DEL
  succeeds (``cleanup()`` removes the ones of this instance's containers);
- ``podman import`` writes c/image's blob-info cache ``/var/lib/containers/cache/blob-info-cache-v1.boltdb``.

Pitfalls this module takes care of:

- ``[containers] netns = "none"``: a ``run`` without ``--network`` gets no network; the default network
  (``--network bridge`` / ``podman``) is a conflist of ours with only the ``loopback`` plugin, so nothing can
  make podman create its ``cni-podman0`` bridge on the host. Do not use ``podman network create`` (its CNI
  conflists are bridges): write conflists with ``write_network``.
- ``default_ulimits``: podman asks for ``nofile=1048576`` and a large ``nproc``; without CAP_SYS_RESOURCE
  (these machines) runc fails with "error setting rlimit type 7/6: operation not permitted". We pin both
  to what this process may set.
- busybox's ``sleep`` as PID 1 ignores SIGTERM: ``rm -f`` / ``stop`` without ``-t 0`` wait 10 s.
- every podman command calls VERSION on the plugin of each conflist in the network dir: keep it small.

Standard library only.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

CNI_CACHE = Path("/var/lib/cni/results")  # libcni's default cache dir; podman 4.3 cannot move it
NETNS_DIR = Path("/run/netns")
DEFAULT_NETWORK = "harness-default"  # what --network bridge/podman means here: loopback only
APT_PACKAGES = ("podman", "containernetworking-plugins")


def available() -> str | None:
    """None when podman (with the CNI plugins) can run here as root; else why not."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install -y " + " ".join(APT_PACKAGES) + ")"
    if not Path("/usr/lib/cni/loopback").exists():
        return "containernetworking-plugins is not installed (/usr/lib/cni/loopback missing)"
    if os.geteuid() != 0:
        return "podman's CNI backend needs root"
    return None


def require() -> None:
    """Skip without podman; fail instead where the stack must be complete (CI: scripts/stack installs it)."""
    reason = available()
    if reason is None:
        return
    import pytest

    if os.environ.get("COURIER_REQUIRE_STACK") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _toml_str(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _toml_list(values: Iterable[str | Path]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _ulimits() -> list[str]:
    """nofile/nproc that runc may set without CAP_SYS_RESOURCE (podman's defaults exceed the hard limits)."""
    limits = []
    for name, rlimit, cap in (("nofile", resource.RLIMIT_NOFILE, 1048576), ("nproc", resource.RLIMIT_NPROC, 32768)):
        hard = resource.getrlimit(rlimit)[1]
        value = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        limits.append(f"{name}={value}:{value}")
    return limits


def busybox_rootfs(root: Path, busybox: str = "/bin/busybox") -> Path:
    """A rootfs with the static busybox and its applet links (as scripts/stack builds busybox:local)."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet == "bin/busybox":
            continue
        link = root / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/bin/busybox")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    return root


def install_plugin(script: Path, plugin_dir: Path, name: str) -> Path:
    """Copy the Python plugin ``script`` into ``plugin_dir`` as executable ``name``, run by this interpreter."""
    plugin_dir.mkdir(parents=True, exist_ok=True)
    body = script.read_text().split("\n", 1)[1] if script.read_text().startswith("#!") else script.read_text()
    target = plugin_dir / name
    target.write_text(f"#!{sys.executable} -IS\n{body}")
    target.chmod(0o755)
    return target


class Podman:
    """podman with private configuration and storage under ``workdir``, CNI plugins from ``plugin_dirs``
    (then ``/usr/lib/cni``) and conflists from ``workdir/net.d``."""

    def __init__(self, workdir: Path, plugin_dirs: list[Path], *, driver: str = "vfs", binary: str = "podman"):
        self.workdir = workdir = Path(workdir).resolve()
        self.binary = binary
        self.network_dir = workdir / "net.d"
        self.graphroot = workdir / "storage"
        workdir.mkdir(parents=True, exist_ok=True)
        # runroot (and libpod's tmp_dir) get a short path of their own: with a runroot longer than ~50
        # characters (pytest's tmp_path is) every `podman run` without -d hangs 20 s before it returns.
        self.runroot = Path(tempfile.mkdtemp(prefix="podman-run-", dir="/tmp"))
        (workdir / "run").unlink(missing_ok=True)
        (workdir / "run").symlink_to(self.runroot)
        self.events_log = workdir / "events.log"
        self.plugin_dirs = [Path(p).resolve() for p in plugin_dirs]
        for d in (self.network_dir, self.graphroot, workdir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        cni_dirs = [*self.plugin_dirs, Path("/usr/lib/cni")]
        self.containers_conf = workdir / "containers.conf"
        self.containers_conf.write_text(
            "[containers]\n"
            'netns = "none"\n'
            f"default_ulimits = {_toml_list(_ulimits())}\n"
            "\n[network]\n"
            'network_backend = "cni"\n'
            f"cni_plugin_dirs = {_toml_list(cni_dirs)}\n"
            f"network_config_dir = {_toml_str(self.network_dir)}\n"
            f"default_network = {_toml_str(DEFAULT_NETWORK)}\n"
            "\n[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f"events_logfile_path = {_toml_str(self.events_log)}\n"
            f"tmp_dir = {_toml_str(self.runroot / 'libpod')}\n"
            'lock_type = "file"\n'
            f"image_copy_tmp_dir = {_toml_str(workdir / 'tmp')}\n")
        self.storage_conf = workdir / "storage.conf"
        self.storage_conf.write_text(
            "[storage]\n"
            f"driver = {_toml_str(driver)}\n"
            f"graphroot = {_toml_str(self.graphroot)}\n"
            f"runroot = {_toml_str(self.runroot / 'storage')}\n")
        self.registries_conf = workdir / "registries.conf"
        self.registries_conf.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.containers_conf),
                    "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
                    "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf), "TMPDIR": str(workdir / "tmp")}
        self._seen: set[str] = set()
        self.write_network(DEFAULT_NETWORK, {"type": "loopback"})

    def run(self, *args: str, check: bool = True, timeout: float = 120,
            input: str | bytes | None = None) -> subprocess.CompletedProcess[str]:
        """``podman ARGS``; a failure raises AssertionError (with stderr) when ``check``."""
        result = subprocess.run([self.binary, *args], capture_output=True, text=True, env=self.env,
                                timeout=timeout, input=input.decode() if isinstance(input, bytes) else input)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def import_image(self, ref: str = "localhost/busybox:local", rootfs: Path | None = None,
                     cmd: tuple[str, ...] = ("/bin/sh",)) -> str:
        """``podman import`` ``rootfs`` (default: a busybox rootfs) as ``ref``; returns the image ID."""
        with tempfile.TemporaryDirectory(dir=self.workdir / "tmp") as tmp:
            root = rootfs if rootfs is not None else busybox_rootfs(Path(tmp) / "rootfs")
            archive = Path(tmp) / "rootfs.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(root, arcname=".")
            out = self.run("import", "--quiet", "--change", f"CMD {json.dumps(list(cmd))}", str(archive), ref)
        return out.stdout.strip().removeprefix("sha256:")

    def write_network(self, name: str, plugin_config: dict | list[dict], cni_version: str = "1.0.0") -> Path:
        """A conflist ``name`` in this instance's network dir; ``plugin_config``: one plugin's entry (its
        ``type`` names the executable) or the chain."""
        plugins = [plugin_config] if isinstance(plugin_config, dict) else list(plugin_config)
        path = self.network_dir / f"{name}.conflist"
        path.write_text(json.dumps({"cniVersion": cni_version, "name": name, "plugins": plugins}, indent=2))
        return path

    def remove_network(self, name: str) -> None:
        (self.network_dir / f"{name}.conflist").unlink(missing_ok=True)

    def inspect(self, name: str) -> dict:
        return json.loads(self.run("inspect", name).stdout)[0]

    def container_ids(self) -> set[str]:
        """Every container this instance ever created (from its private events log), removed ones too."""
        ids = self._seen
        try:
            lines = self.events_log.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("Type") == "container" and event.get("ID"):
                ids.add(event["ID"])
        return set(ids)

    def leftovers(self) -> list[str]:
        """What this instance left on the host: CNI cache entries and netns of its containers, mounts under
        its workdir or runroot, processes (conmon, containers) naming either."""
        ids = self.container_ids()
        left = [str(p) for p in CNI_CACHE.glob("*") if any(f"-{cid}-" in p.name for cid in ids)]
        dirs = (str(self.workdir), str(self.runroot))
        with open("/proc/self/mountinfo") as f:
            left += [line.split()[4] for line in f if any(d in line for d in dirs)]
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(d in cmdline for d in dirs):
                left.append(f"process {proc.name}: {cmdline[:200]}")
        return left

    def cleanup(self) -> None:
        """Remove every container (kill, no grace), the CNI cache entries of this instance's containers, the
        storage (``system reset``), the runroot and the workdir's podman state (configs and conflists stay)."""
        ids = self.container_ids()
        try:
            self.run("rm", "--all", "--force", "--time", "0", check=False, timeout=60)
            self.run("system", "reset", "--force", check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for path in CNI_CACHE.glob("*"):
            if any(f"-{cid}-" in path.name for cid in ids):
                path.unlink(missing_ok=True)
        for path in (self.graphroot, self.runroot, self.workdir / "tmp"):
            shutil.rmtree(path, ignore_errors=True)
        (self.workdir / "run").unlink(missing_ok=True)
