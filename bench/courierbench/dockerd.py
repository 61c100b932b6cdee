"""The bench's private dockerd (exec-root /var/run/docker, which upstream's Join schema insists on) and the
docker CLI against it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .common import DOCKER_PID, DOCKER_SOCK, EXEC_ROOT, IMAGE, log, tail

if TYPE_CHECKING:
    from .bench import Bench


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
    env["DOCKER_HOST"] = f"unix://{DOCKER_SOCK}"
    return env


def docker(*args: str, timeout: float = 60) -> tuple[int, str, str, float]:
    t0 = time.monotonic()
    try:
        p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=_env())
        return p.returncode, p.stdout.strip(), p.stderr.strip(), time.monotonic() - t0
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, out.strip(), f"timed out after {timeout:.0f}s", time.monotonic() - t0


def docker_popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(["docker", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def other_dockerd_on_exec_root() -> int | None:
    """Pid of another dockerd using our exec-root (it would share netns/containerd dirs with ours)."""
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"dockerd"):
            er = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == b"--exec-root"), b"/var/run/docker")
            if os.path.realpath(er) == os.path.realpath(EXEC_ROOT):
                return pid
    return None


def start_dockerd(b: Bench) -> None:
    er = Path(EXEC_ROOT)
    b.exec_root_before = set(os.listdir(er)) if er.exists() else set()
    netns = er / "netns"
    b.netns_before = set(os.listdir(netns)) if netns.exists() else set()
    conf = b.work / "daemon.json"
    conf.write_text("{}\n")
    data_root = b.work / "docker"
    argv = ["dockerd", "--config-file", str(conf), "--data-root", str(data_root), "--exec-root", EXEC_ROOT,
            "-H", f"unix://{DOCKER_SOCK}", "--pidfile", str(DOCKER_PID), "--bridge=none", "--iptables=false"]
    logf = open(b.logs / "dockerd.log", "ab")  # noqa: SIM115
    b.dockerd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    logf.close()
    t_end = time.monotonic() + 60
    while docker("version", "--format", "{{.Server.Version}}", timeout=10)[0] != 0:
        if b.dockerd.poll() is not None or time.monotonic() > t_end:
            raise RuntimeError(f"bench dockerd did not start:\n{tail(b.logs / 'dockerd.log', 40)}")
        time.sleep(0.3)
    import_busybox(b.work / "rootfs")
    log(f"bench dockerd up (pid {b.dockerd.pid}, exec-root {EXEC_ROOT}, data-root {data_root}), {IMAGE} imported")


def import_busybox(root: Path) -> None:
    """busybox:local from busybox-static, as scripts/stack does."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True,
                                 check=True).stdout.split():
        if applet != "bin/busybox":
            (root / applet).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                (root / applet).symlink_to("/bin/busybox")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    imp = subprocess.run(["docker", "-H", f"unix://{DOCKER_SOCK}", "import", "-c", 'CMD ["/bin/sh"]', "-", IMAGE],
                         stdin=tar.stdout, capture_output=True, text=True)
    tar.wait()
    shutil.rmtree(root)
    if imp.returncode:
        raise RuntimeError(f"docker import failed: {imp.stderr}")
