"""A real single-node SLURM cluster on localhost for tests: munged, slurmctld and slurmd, in a scratch folder.

What was found to work on Debian 12 without systemd (slurm-wlm 22.05): no cgroup.conf,
``proctrack/linuxproc``, ``task/none``, no accounting; munged as the munge user.  This cluster keeps
to itself so that it cannot meet another one on the machine: its own munge socket and key
(``AuthInfo=socket=``), free ports for slurmctld and slurmd, state, spool, pid and log files in the
scratch folder.  :meth:`Cluster.stop` ends every daemon it started, by the pids in their pid files.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")


class Unavailable(Exception):
    """SLURM cannot be installed or started here; the message says why."""


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def install() -> None:
    """Install Debian's slurm-wlm and munge when they are missing and this process may (root, apt-get)."""
    if not missing_binaries():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"{', '.join(missing_binaries())} not installed, and this is not root with apt-get "
                          "to install them: apt-get install slurm-wlm munge (.ci/run does)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            raise Unavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class Cluster:
    """One node, one partition, every CPU of the machine; started by :meth:`start`, ended by :meth:`stop`."""

    def __init__(self) -> None:
        # Not under pytest's tmp folder: munged refuses a socket or key in a folder the munge user cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="ravekit-slurm-"))
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.pid_files = [self.root / "slurmd.pid", self.root / "slurmctld.pid", self.root / "munge" / "pid"]

    def start(self, timeout: float = 60) -> None:
        if os.geteuid() != 0:
            raise Unavailable("starting munged, slurmctld and slurmd needs root (SlurmUser=root)")
        try:
            munge_user = pwd.getpwnam("munge")
        except KeyError:
            raise Unavailable("no munge user: is Debian's munge package installed?") from None
        munge = self.root / "munge"
        munge.mkdir()
        os.chown(munge, munge_user.pw_uid, munge_user.pw_gid)
        munge.chmod(0o755)  # munged wants the socket's folder open to every user
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chown(key, munge_user.pw_uid, munge_user.pw_gid)
        key.chmod(0o400)
        self._run(["su", "-s", "/bin/sh", "munge", "-c",
                   f"{_sbin('munged')} --socket={munge}/sock --key-file={key} --log-file={munge}/log "
                   f"--pid-file={munge}/pid --seed-file={munge}/seed"], "munged", munge / "log")
        self._write_conf()
        self._run([_sbin("slurmctld"), "-f", str(self.conf)], "slurmctld", self.root / "slurmctld.log")
        self._run([_sbin("slurmd"), "-f", str(self.conf)], "slurmd", self.root / "slurmd.log")
        end = time.monotonic() + timeout
        state = ""
        while time.monotonic() < end:
            state = self.call("sinfo", "-h", "-o", "%T", check=False).strip()
            if state == "idle":
                return
            time.sleep(1)
        raise Unavailable(f"the node is {state or 'unknown'} after {timeout:.0f} s, not idle: "
                          f"{self.log_tail('slurmd.log')} {self.log_tail('slurmctld.log')}")

    def _write_conf(self) -> None:
        host = socket.gethostname().split(".")[0]
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        r = self.root
        self.conf.write_text("\n".join([
            "ClusterName=ravekit-test", f"SlurmctldHost={host}",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={r}/munge/sock",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU_Memory",
            "SlurmUser=root", "SlurmdUser=root", "MpiDefault=none",
            f"StateSaveLocation={r}/state", f"SlurmdSpoolDir={r}/spool",
            f"SlurmctldPidFile={r}/slurmctld.pid", f"SlurmdPidFile={r}/slurmd.pid",
            f"SlurmctldLogFile={r}/slurmctld.log", f"SlurmdLogFile={r}/slurmd.log",
            "ReturnToService=2", "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            # Finished jobs stay known to scontrol for a while: with no accounting, that is where states are.
            "MinJobAge=600",
            f"NodeName={host} CPUs={os.cpu_count() or 1} RealMemory={max(1000, int(memory_mb * 0.8))} State=UNKNOWN",
            f"PartitionName=ravekit Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""]))

    def _run(self, cmd: list[str], name: str, log: Path) -> None:
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise Unavailable(f"{name} did not start ({done.stderr.strip()[-200:]}) {self.log_tail(log.name, log)}")

    def log_tail(self, name: str, path: Path | None = None) -> str:
        path = path or self.root / name
        try:
            return f"[{name}: ...{path.read_text(errors='replace')[-400:]}]"
        except OSError:
            return f"[no {name}]"

    def call(self, *cmd: str, check: bool = True, cwd: Path | None = None, env: dict | None = None) -> str:
        done = subprocess.run(list(cmd), env={**self.env, **(env or {})}, cwd=cwd, capture_output=True, text=True,
                              timeout=60)
        if check and done.returncode:
            raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def wait(self, job_ids: list[str], timeout: float) -> dict[str, str]:
        """Wait until no job of ``job_ids`` is queued or running; ``{job or array task: state}``."""
        end = time.monotonic() + timeout
        while self.call("squeue", "-h", "-j", ",".join(job_ids), check=False).strip():
            if time.monotonic() > end:
                raise AssertionError(f"jobs {job_ids} still queued or running after {timeout:.0f} s:\n"
                                     + self.call("squeue", check=False))
            time.sleep(1)
        states = {}
        for job in job_ids:
            for record in self.call("scontrol", "-o", "show", "job", job, check=False).splitlines():
                fields = dict(f.split("=", 1) for f in record.split() if "=" in f)
                task = fields.get("ArrayTaskId")
                states[f"{job}_{task}" if task else job] = fields.get("JobState", "?")
        return states

    def stop(self) -> None:
        """Cancel what is left of the jobs, then end slurmd, slurmctld and munged, each by its pid file."""
        if self.conf.exists():
            self.call("scancel", "--user", "root", check=False)
        for pid_file in self.pid_files:
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            for sig, wait in ((15, 10.0), (9, 5.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                end = time.monotonic() + wait
                while time.monotonic() < end and _alive(pid):
                    time.sleep(0.1)
                if not _alive(pid):
                    break
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours is gone for every purpose here.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
