"""Languages as the simple face's clients name them: codes (``ko``, ``en-US``) or names
(``korean``, ``English``, ``한국어``), turned into the codes the catalog's models use."""

from __future__ import annotations

import re

#: Names (lower case) -> language code. Codes themselves are accepted as they are.
NAMES: dict[str, str] = {
    "korean": "ko",
    "한국어": "ko",
    "english": "en",
    "american english": "en-US",
    "british english": "en-GB",
    "japanese": "ja",
    "日本語": "ja",
    "chinese": "zh",
    "mandarin": "zh",
    "中文": "zh",
    "cantonese": "yue",
    "german": "de",
    "french": "fr",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "brazilian portuguese": "pt-BR",
    "russian": "ru",
    "dutch": "nl",
    "swedish": "sv",
    "danish": "da",
    "norwegian": "nb",
    "finnish": "fi",
    "polish": "pl",
    "czech": "cs",
    "slovak": "sk",
    "hungarian": "hu",
    "romanian": "ro",
    "greek": "el",
    "turkish": "tr",
    "ukrainian": "uk",
    "bulgarian": "bg",
    "croatian": "hr",
    "serbian": "sr",
    "arabic": "ar",
    "hebrew": "he",
    "persian": "fa",
    "hindi": "hi",
    "bengali": "bn",
    "tamil": "ta",
    "urdu": "ur",
    "thai": "th",
    "vietnamese": "vi",
    "indonesian": "id",
    "malay": "ms",
    "swahili": "sw",
    "catalan": "ca",
    "basque": "eu",
}
_CODE = re.compile(r"^([a-z]{2,3})(?:[-_]([a-z]{2}|\d{3}))?$", re.I)
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def normalize(value: str) -> str | None:
    """The code for a language name or code (``Korean`` -> ``ko``, ``en_us`` ->
    ``en-US``), or None when it is neither."""
    text = value.strip()
    named = NAMES.get(text.lower())
    if named:
        return named
    match = _CODE.match(text)
    if match is None:
        return None
    base, region = match.group(1).lower(), match.group(2)
    return f"{base}-{region.upper()}" if region else base


def pick(code: str, available: set[str]) -> str | None:
    """``code`` when ``available`` has it, else its base language (``ko-KR`` -> ``ko``)."""
    if code in available:
        return code
    base = code.split("-", 1)[0]
    return base if base in available else None


def guess(text: str) -> str:
    """The language a text is written in, by its script alone: Hangul -> ``ko``, kana ->
    ``ja``, Chinese characters -> ``zh``, anything else -> ``en``."""
    if _HANGUL.search(text):
        return "ko"
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    return "en"
