"""Transcript segments as SubRip (``srt``) and WebVTT (``vtt``), and language names
(OpenAI's ``verbose_json`` names the language, ``english``, where genyard has a code)."""

from __future__ import annotations

from typing import Any

LANGUAGE_NAMES = {
    "en": "english",
    "ko": "korean",
    "ja": "japanese",
    "zh": "chinese",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "ru": "russian",
}


def _stamp(seconds: float, separator: str) -> str:
    millis = max(0, round(float(seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cues(segments: list[dict[str, Any]], separator: str) -> list[str]:
    return [
        f"{_stamp(s.get('start', 0), separator)} --> {_stamp(s.get('end', 0), separator)}\n"
        f"{str(s.get('text', '')).strip()}\n"
        for s in segments
    ]


def srt(segments: list[dict[str, Any]]) -> str:
    return "\n".join(f"{i}\n{cue}" for i, cue in enumerate(_cues(segments, ","), start=1))


def vtt(segments: list[dict[str, Any]]) -> str:
    return "WEBVTT\n\n" + "\n".join(_cues(segments, "."))
