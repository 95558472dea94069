"""Sampling profiles of the service processes with py-spy (a dev extra), for `python -m bench --py-spy N`.

py-spy samples a running process from outside, with no change to it. It is started with the saturated
phase and samples each service for N seconds; its raw output (one collapsed stack per line, with its
sample count) is summed into the functions that were on CPU most (`self`) and the project functions
under which the time was spent (`inclusive`, only frames of services/ and shared/).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PROJECT = ("services/", "shared/")


def binary() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def start(pids: dict[str, int], seconds: float, out_dir: Path) -> list[asyncio.subprocess.Process]:
    exe = binary()
    if exe is None:
        print("  ! --py-spy: py-spy is not installed (it is in requirements/dev.txt: make provision)", flush=True)
        return []
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    return [
        await asyncio.create_subprocess_exec(
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "50",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out_dir / f"{name}.txt"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


async def finish(procs: list[asyncio.subprocess.Process], timeout_s: float) -> None:
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.terminate()
            await proc.wait()


def summary(out_dir: Path, names: tuple[str, ...], top: int = 10) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in names:
        path = out_dir / f"{name}.txt"
        if not path.exists():
            continue
        own: Counter = Counter()
        under: Counter = Counter()
        total = 0
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")[1:]  # the first element is the thread
            if frames:
                own[_short(frames[-1])] += n
            for frame in {_short(f) for f in frames if any(p in f for p in PROJECT) and not _whole_process(f)}:
                under[frame] += n
        result[name] = {
            "samples": total,
            "self": [{"function": f, "share": round(n / total, 3)} for f, n in own.most_common(top)],
            "inclusive": [{"function": f, "share": round(n / total, 3)} for f, n in under.most_common(top)],
        }
    return result


def _whole_process(frame: str) -> bool:
    """Frames every sample of a service goes through (its entry point): they say nothing."""
    return "__main__.py" in frame or (frame.startswith("serve (") and "shared/bootstrap.py" in frame)


def _short(frame: str) -> str:
    """`handle (services/x/y.py:12)` → `handle (services/x/y.py)`; library paths keep their last two parts."""
    function, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in PROJECT:
        if marker in where:
            return f"{function} ({marker}{where.split(marker, 1)[1]})"
    return f"{function} ({'/'.join(where.split('/')[-2:])})"
