"""Running a command-line engine (tesseract, fluidsynth, ffmpeg) from a provider.

The run waits on the child in short slices so that a canceled job (or one past its
timeout) kills the child at once instead of waiting for it to finish; the calling
thread sleeps in ``wait`` with the GIL released, so several runs go in parallel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genyard.errors import ProviderError
from genyard.providers.base import RunContext

POLL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def error_text(self) -> str:
        """The last lines of stderr, for a message (never the whole of it)."""
        lines = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-3:])[:500]


def which(name: str) -> str | None:
    return shutil.which(name)


def run_tool(
    args: Sequence[str],
    *,
    ctx: RunContext | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> Completed:
    """Run ``args`` to the end and return its exit status and output.

    stdin, stdout and stderr go through unnamed temporary files rather than pipes, so
    nothing can deadlock and the wait can be cut short. Raises :class:`ProviderError`
    when the binary cannot start, the run is canceled (``ctx.canceled``) or it takes
    longer than ``timeout`` seconds; the child is killed in the last two cases.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with (
        tempfile.TemporaryFile() as source,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        if stdin is not None:
            source.write(stdin)
            source.seek(0)
        try:
            proc = subprocess.Popen(  # noqa: S603 (a fixed binary with arguments we built)
                list(args),
                stdin=source if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=full_env,
            )
        except OSError as exc:
            raise ProviderError(f"could not start {args[0]}: {exc}") from exc
        deadline = time.monotonic() + timeout
        while True:
            try:
                returncode = proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                canceled = ctx is not None and ctx.canceled
                if canceled or time.monotonic() >= deadline:
                    proc.kill()
                    proc.wait()
                    what = "canceled" if canceled else f"took longer than {timeout:g} s"
                    raise ProviderError(f"{os.path.basename(args[0])} {what}") from None
        out.seek(0)
        err.seek(0)
        return Completed(returncode, out.read(), err.read())
