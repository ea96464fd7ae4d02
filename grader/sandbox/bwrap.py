"""The worker's view of the machine as an allowlist, built by bubblewrap.

The worker starts from an empty root and sees only: the system's /usr (and the /lib, /bin
links into it), the few /etc files the dynamic loader (and fontconfig) reads, its interpreter and venv, all
read-only; its harness (read-only) and a copy of the submission (read-only) that it copies into
its own size-capped tmpfs work folder; fresh tmpfs /tmp and /dev/shm; a minimal /dev; and its
own /proc. New user, mount, PID, IPC, UTS, network and cgroup namespaces, no capabilities, and
no way to make another user namespace (``--disable-userns``), so the worker cannot undo a mount
or reach anything that was not put there. Another checkout of the course, home folders, other
submissions, the mount table of the host: none of it exists for the worker.

bubblewrap runs as the sandbox uid, so it can bind only what that uid can reach; a venv inside
a folder it cannot enter (a checkout under /root or in a mode-700 temp folder, a pyenv Python)
is first bound by the grader, as root, at a reachable place in a mount namespace of the
worker's own (isolation.reach_for), and from there into the view at its own path.

bubblewrap is Debian's ``bubblewrap`` package, the sandbox Flatpak relies on; we never run it
setuid: the grader drops to the sandbox uid first and bubblewrap makes an unprivileged user
namespace.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

INSIDE = "/sandbox"  # where the worker finds its harness, its submission and its work folder
SYSTEM_DIRS = ("/usr",)
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
LOADER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                "/etc/localtime", "/etc/fonts")  # fonts: matplotlib renders figures inside


def executable() -> str | None:
    """The bubblewrap program, or None when it is not installed."""
    return shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")


def gpu_devices(gpu: str | None) -> list[str]:
    """The device nodes a worker on this GPU (its index on the host) needs: the GPU and the
    driver's control nodes (none without one, or for a GPU named by UUID: those are skipped)."""
    if gpu is None or not gpu.isdigit():
        return []
    index = gpu
    nodes = [f"/dev/nvidia{index}", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
    return [n for n in nodes if os.path.exists(n)]


def interpreter_folders(python: str) -> list[str]:
    """The folders a Python needs: its venv (where pyvenv.cfg is) and the base installation."""
    python = os.path.abspath(python)
    home = os.path.dirname(os.path.dirname(python))
    folders = [home]
    cfg = os.path.join(home, "pyvenv.cfg")
    if os.path.exists(cfg):
        for line in open(cfg).read().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                folders.append(os.path.dirname(value.strip()))
    folders.append(os.path.dirname(os.path.dirname(os.path.realpath(python))))
    return folders


def _outermost(paths: list[str]) -> list[str]:
    """The existing paths that lie inside none of the others, in a stable order."""
    real = []
    for p in paths:
        p = os.path.normpath(p)
        if p != "/" and os.path.exists(p) and p not in real:
            real.append(p)
    return [p for p in real if not any(p.startswith(o + "/") for o in real if o != p)]


@dataclass
class View:
    """What one worker may see, and the bubblewrap command that shows it exactly that."""

    python: str
    harness: str  # host folder: the worker, the codec, probes.py, data files
    submission: str  # host folder: the student's files (copied into the tmpfs work folder)
    tmpfs_mb: int = 256  # each of the work folder, /tmp and /dev/shm
    extra: list[str] = field(default_factory=list)  # more read-only folders (datasets, ...)
    devices: list[str] = field(default_factory=list)  # device nodes to pass through (GPUs)

    def read_only(self) -> list[str]:
        """Host paths bound read-only at the same place inside."""
        wanted = [*SYSTEM_DIRS, *interpreter_folders(self.python), *self.extra]
        wanted += [p for p in SYSTEM_LINKS if os.path.isdir(p) and not os.path.islink(p)]
        return _outermost(wanted) + [p for p in LOADER_FILES if os.path.exists(p)]

    def command(self, argv: list[str], reach: dict[str, str] | None = None) -> list[str]:
        """The bwrap command running argv inside the view. ``reach`` maps a host folder the
        sandbox uid cannot reach to a bind of it that it can (see isolation.reach_for)."""
        bwrap = executable()
        if bwrap is None:
            raise FileNotFoundError("bubblewrap (bwrap) is not installed")
        reach = reach or {}
        size = str(self.tmpfs_mb << 20)
        cmd = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
               "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox"]
        cmd.extend(["--proc", "/proc", "--dev", "/dev"])
        for dev in self.devices:
            cmd.extend(["--dev-bind", dev, dev])
        for tmp, mode in (("/tmp", "1777"), ("/dev/shm", "1777"), (f"{INSIDE}/work", "0700")):
            cmd.extend(["--size", size, "--perms", mode, "--tmpfs", tmp])
        for path in self.read_only():  # after the tmpfs mounts: a venv may live in /tmp
            cmd.extend(["--ro-bind", reach.get(path, path), path])
        for link in SYSTEM_LINKS:
            if os.path.islink(link):
                cmd.extend(["--symlink", os.readlink(link), link])
        for host, inside in ((self.harness, "harness"), (self.submission, "submission")):
            cmd.extend(["--ro-bind", reach.get(host, host), f"{INSIDE}/{inside}"])
        cmd.extend(["--remount-ro", "/", "--chdir", f"{INSIDE}/work", "--", *argv])
        return cmd

    def sources(self) -> list[str]:
        """Every host path the view binds (what the sandbox uid must be able to reach)."""
        return [*self.read_only(), self.harness, self.submission]
