"""Run a command in a user namespace of its own, so a test can lower inotify's limits, or take
root's power over files away, for that command alone: the machine's sysctls stay as they are.

Since Linux 4.9 inotify's limits are counted per user namespace as well as for the machine:
`/proc/sys/user/max_inotify_watches` and `max_inotify_instances` of a new namespace bind only
the processes inside it. Root may create one (CI runs as root), and so may other users where
the distribution allows unprivileged user namespaces.

- `--map-root`: the command is root inside (mapped to the caller's user), as it needs to be
  to lower the limits; without it, its user is unmapped ("nobody" inside): files keep their
  owner's permission bits against it, whoever the caller is outside, so a folder made
  unreadable with `chmod 000` is unreadable to it even when the test runs as root.

As a script: ``python userns.py [--map-root] [--watches N] [--instances N] -- COMMAND...``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import subprocess
import sys
from collections.abc import Sequence

CLONE_NEWUSER = 0x10000000


def in_user_namespace(
    command: Sequence[str],
    *,
    map_root: bool = True,
    watches: int | None = None,
    instances: int | None = None,
) -> list[str]:
    """The argv that runs `command` in a user namespace of its own, with the inotify limits
    given (None: as the machine's)."""
    argv = [sys.executable, __file__]
    if map_root:
        argv.append("--map-root")
    if watches is not None:
        argv += ["--watches", str(watches)]
    if instances is not None:
        argv += ["--instances", str(instances)]
    return [*argv, "--", *command]


@functools.cache
def user_namespace_problem() -> str:
    """Why a user namespace with its own inotify limits cannot be had here ("" when it can)."""
    if not sys.platform.startswith("linux"):
        return "user namespaces are Linux's"
    probe = [sys.executable, "-c", "print(open('/proc/sys/user/max_inotify_watches').read())"]
    try:
        done = subprocess.run(
            in_user_namespace(probe, watches=37), capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot start a process in a user namespace: {exc}"
    if done.returncode != 0 or done.stdout.strip() != "37":
        return (
            "no user namespace with its own inotify limits here: "
            + (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        )
    return ""


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    uid, gid = os.geteuid(), os.getegid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        print(f"unshare(CLONE_NEWUSER): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 111
    if "--map-root" in options:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    for flag, name in (
        ("--watches", "max_inotify_watches"),
        ("--instances", "max_inotify_instances"),
    ):
        if flag in options:
            _write(f"/proc/sys/user/{name}", options[options.index(flag) + 1])
    os.execv(command[0], command)
    return 111  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
