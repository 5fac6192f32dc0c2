"""The speech models' voices as the simple face shows them (``GET /api/tts``) and picks
them (``POST /api/tts``): a language (code or name) and an optional speaker choose the
model. English with no speaker, or speaker ``joe``, is piper's neural voice; every other
language or speaker is espeak-ng's (the catalog's default speech model per language
first, then any speech model whose input takes the language)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genyard.api.simple import languages
from genyard.api.simple.errors import model_unavailable
from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidRequest
from genyard.services.container import Services

SPEECH = "speech"


@dataclass(frozen=True, slots=True)
class Voice:
    """What to run: the model, and its ``language`` and ``speaker`` input values."""

    entry: ModelEntry
    language: str | None
    speaker: str | None


def _enum(entry: ModelEntry, name: str) -> list[str]:
    prop = entry.input_schema.get("properties", {}).get(name, {})
    values = prop.get("enum", []) if isinstance(prop, dict) else []
    return [v for v in values if isinstance(v, str)]


def _default(entry: ModelEntry, name: str) -> str | None:
    prop = entry.input_schema.get("properties", {}).get(name, {})
    value = prop.get("default") if isinstance(prop, dict) else None
    return value if isinstance(value, str) else None


def _speech_models(services: Services, language: str | None = None) -> list[ModelEntry]:
    """Speech models, the catalog's default for ``language`` (or the overall default)
    first, available ones before unavailable ones."""
    models = services.catalog.all(SPEECH)
    first = services.catalog.default_for(SPEECH, language)
    if language and first is None:
        first = services.catalog.default_for(SPEECH, language.split("-", 1)[0])
    models.sort(key=lambda e: (not _available(services, e), e is not first))
    return models


def _available(services: Services, entry: ModelEntry) -> bool:
    return services.providers.availability(entry.provider, entry).available


def _speaker(entry: ModelEntry, wanted: str) -> str | None:
    for value in _enum(entry, "speaker"):
        if value.lower() == wanted.lower():
            return value
    return None


def choose(services: Services, text: str, language: str | None, speaker: str | None) -> Voice:
    """The voice for a request; 400 for an unknown language or speaker, or a pair no
    model speaks; 503 when only an unavailable model would."""
    code = languages.guess(text)
    if language is not None:
        named = languages.normalize(language)
        if named is None:
            raise InvalidRequest(
                f"language: {language!r} is not a language code (ko, en, ja ...) or name "
                "(korean, english, japanese ...); GET /api/tts lists the languages"
            )
        code = named
    candidates = _speech_models(services, code)
    if speaker is not None:
        candidates = [e for e in candidates if _speaker(e, speaker) is not None]
        if not candidates:
            raise InvalidRequest(
                f"speaker: unknown speaker {speaker!r}; GET /api/tts lists the speakers"
            )
    # A model that takes the code itself before one that takes only its base language
    # (en-GB is espeak-ng's British voice, not piper's American one).
    matches = [(e, code) for e in candidates if code in _enum(e, "language")]
    matches += [
        (e, value)
        for e in candidates
        if (value := languages.pick(code, set(_enum(e, "language")))) is not None
    ]
    for entry, value in matches:
        if _available(services, entry):
            chosen = _speaker(entry, speaker) if speaker is not None else None
            return Voice(entry, value, chosen)
    if matches:  # only models that cannot run here speak it
        entry = matches[0][0]
        availability = services.providers.availability(entry.provider, entry)
        raise model_unavailable(entry.id, availability.reason, availability.fix)
    if speaker is not None:
        raise InvalidRequest(
            f"speaker: {speaker!r} does not speak {code!r}; GET /api/tts lists each "
            "speaker's languages"
        )
    raise InvalidRequest(
        f"language: no voice speaks {code!r} here; GET /api/tts lists the languages"
    )


def _speaker_name(entry: ModelEntry, speaker: str) -> dict[str, Any]:
    for voice in entry.capabilities.get("voices", []):
        if isinstance(voice, dict) and voice.get("id") == speaker:
            return {k: v for k, v in voice.items() if k in ("name", "gender")}
    if speaker == "default":
        return {"name": "the language's own voice"}
    kinds = {"m": "male", "f": "female"}
    if speaker[:1] in kinds and speaker[1:].isdigit():
        return {"name": f"{kinds[speaker[0]]} variant {speaker[1:]}"}
    return {"name": speaker}


def speakers(services: Services) -> dict[str, Any]:
    """``GET /api/tts``: every speaker of the available speech models, and every
    language with the speaker and model that read it when no speaker is named."""
    listed: list[dict[str, Any]] = []
    codes: list[str] = []
    names: dict[str, str] = {}
    for entry in _speech_models(services):
        if not _available(services, entry):
            continue
        model_languages = _enum(entry, "language")
        for speaker in _enum(entry, "speaker"):
            listed.append(
                {
                    "id": speaker,
                    **_speaker_name(entry, speaker),
                    "model": entry.id,
                    "languages": model_languages,
                    "default": speaker == _default(entry, "speaker"),
                }
            )
        codes += [code for code in model_languages if code not in codes]
        for voice in entry.capabilities.get("voices", []):
            if isinstance(voice, dict) and voice.get("id") in model_languages:
                names.setdefault(str(voice["id"]), str(voice.get("name") or voice["id"]))
    by_language = []
    for code in codes:
        voice = choose(services, "", code, None)
        by_language.append(
            {
                "code": code,
                "name": names.get(code, code),
                "speaker": voice.speaker or _default(voice.entry, "speaker"),
                "model": voice.entry.id,
            }
        )
    return {"speakers": listed, "languages": by_language}
