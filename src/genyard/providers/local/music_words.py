"""The words the algorithmic composer understands in a music prompt, and the parser.

A prompt is read for a tempo ("120bpm", "at 90 bpm", "tempo 100", "slow", "fast"), a
key ("in D minor", "E flat major"), a metre ("waltz", "3/4"), General MIDI instrument
names ("piano and saxophone", "strings", "drums") and style or mood words ("happy",
"sad", "epic", "jazz"...). Everything else in the prompt is ignored; the result says
which words were understood. Korean words are matched inside longer words (particles
attach to them: "피아노와"), English words as whole words (plurals too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MIN_BPM, MAX_BPM = 40, 220


@dataclass(frozen=True, slots=True)
class Instrument:
    name: str
    program: int  # General MIDI program, 0-127
    family: str  # keys (chords and a left hand), ensemble (held chords), solo, bass
    center: int  # the middle of the range it plays a melody in (MIDI note)


def _i(name: str, program: int, family: str, center: int) -> Instrument:
    return Instrument(name, program, family, center)


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in (
        _i("piano", 0, "keys", 72),
        _i("bright piano", 1, "keys", 72),
        _i("electric piano", 4, "keys", 72),
        _i("harpsichord", 6, "keys", 72),
        _i("celesta", 8, "solo", 84),
        _i("glockenspiel", 9, "solo", 84),
        _i("music box", 10, "solo", 84),
        _i("vibraphone", 11, "keys", 72),
        _i("marimba", 12, "keys", 72),
        _i("xylophone", 13, "solo", 84),
        _i("tubular bells", 14, "solo", 72),
        _i("organ", 16, "keys", 72),
        _i("church organ", 19, "keys", 72),
        _i("accordion", 21, "keys", 72),
        _i("harmonica", 22, "solo", 72),
        _i("classical guitar", 24, "keys", 67),
        _i("acoustic guitar", 25, "keys", 67),
        _i("electric guitar", 27, "keys", 67),
        _i("distorted guitar", 30, "keys", 64),
        _i("acoustic bass", 32, "bass", 43),
        _i("bass", 33, "bass", 43),
        _i("synth bass", 38, "bass", 43),
        _i("violin", 40, "solo", 76),
        _i("viola", 41, "solo", 67),
        _i("cello", 42, "solo", 55),
        _i("contrabass", 43, "bass", 43),
        _i("pizzicato strings", 45, "ensemble", 67),
        _i("harp", 46, "keys", 72),
        _i("timpani", 47, "bass", 45),
        _i("strings", 48, "ensemble", 67),
        _i("choir", 52, "ensemble", 67),
        _i("voice", 53, "ensemble", 67),
        _i("trumpet", 56, "solo", 72),
        _i("trombone", 57, "solo", 58),
        _i("tuba", 58, "bass", 43),
        _i("french horn", 60, "solo", 65),
        _i("brass", 61, "ensemble", 65),
        _i("soprano saxophone", 64, "solo", 74),
        _i("saxophone", 65, "solo", 69),
        _i("tenor saxophone", 66, "solo", 62),
        _i("oboe", 68, "solo", 74),
        _i("bassoon", 70, "solo", 55),
        _i("clarinet", 71, "solo", 69),
        _i("piccolo", 72, "solo", 86),
        _i("flute", 73, "solo", 79),
        _i("recorder", 74, "solo", 79),
        _i("pan flute", 75, "solo", 77),
        _i("synth lead", 81, "solo", 72),
        _i("synth pad", 89, "ensemble", 67),
        _i("sitar", 104, "solo", 67),
        _i("banjo", 105, "keys", 67),
        _i("koto", 107, "solo", 72),
        _i("kalimba", 108, "solo", 79),
        _i("bagpipe", 109, "solo", 72),
        _i("fiddle", 110, "solo", 76),
        _i("steel drums", 114, "solo", 72),
    )
}
DRUMS = "drums"

#: Words (and Korean words) naming each instrument; the longest match wins, so
#: "electric guitar" is not also "guitar", nor "steel drums" "drums".
INSTRUMENT_WORDS: dict[str, tuple[str, ...]] = {
    "piano": ("piano", "grand piano", "acoustic piano", "keys", "피아노"),
    "bright piano": ("bright piano", "upright piano"),
    "electric piano": ("electric piano", "rhodes", "e-piano", "epiano", "일렉트릭 피아노"),
    "harpsichord": ("harpsichord", "하프시코드"),
    "celesta": ("celesta", "celeste", "첼레스타"),
    "glockenspiel": ("glockenspiel", "bells", "글로켄슈필"),
    "music box": ("music box", "musicbox", "오르골"),
    "vibraphone": ("vibraphone", "vibes", "비브라폰"),
    "marimba": ("marimba", "마림바"),
    "xylophone": ("xylophone", "실로폰"),
    "tubular bells": ("tubular bells", "chimes"),
    "organ": ("organ", "hammond", "오르간"),
    "church organ": ("church organ", "pipe organ", "파이프 오르간"),
    "accordion": ("accordion", "아코디언"),
    "harmonica": ("harmonica", "하모니카"),
    "classical guitar": ("classical guitar", "nylon guitar", "spanish guitar", "클래식 기타"),
    "acoustic guitar": ("guitar", "acoustic guitar", "기타", "어쿠스틱 기타"),
    "electric guitar": ("electric guitar", "clean guitar", "일렉 기타", "일렉기타"),
    "distorted guitar": ("distorted guitar", "distortion guitar", "overdrive guitar"),
    "acoustic bass": ("acoustic bass", "double bass", "upright bass", "콘트라베이스"),
    "bass": ("bass", "bass guitar", "electric bass", "베이스"),
    "synth bass": ("synth bass", "bassline"),
    "violin": ("violin", "바이올린"),
    "viola": ("viola", "비올라"),
    "cello": ("cello", "violoncello", "첼로"),
    "contrabass": ("contrabass",),
    "pizzicato strings": ("pizzicato", "pizzicato strings", "피치카토"),
    "harp": ("harp", "하프"),
    "timpani": ("timpani", "kettle drums", "팀파니"),
    "strings": (
        "strings",
        "string section",
        "string ensemble",
        "string quartet",
        "orchestra",
        "현악",
        "오케스트라",
    ),
    "choir": ("choir", "chorus", "합창"),
    "voice": ("voice", "vocal", "vocals", "humming", "목소리"),
    "trumpet": ("trumpet", "트럼펫"),
    "trombone": ("trombone", "트롬본"),
    "tuba": ("tuba", "튜바"),
    "french horn": ("french horn", "horn", "호른"),
    "brass": ("brass", "brass section", "horns", "금관"),
    "soprano saxophone": ("soprano sax", "soprano saxophone"),
    "saxophone": ("sax", "saxophone", "alto sax", "alto saxophone", "색소폰", "색스폰"),
    "tenor saxophone": ("tenor sax", "tenor saxophone"),
    "oboe": ("oboe", "오보에"),
    "bassoon": ("bassoon", "바순"),
    "clarinet": ("clarinet", "클라리넷"),
    "piccolo": ("piccolo", "피콜로"),
    "flute": ("flute", "플루트", "플룻"),
    "recorder": ("recorder", "리코더"),
    "pan flute": ("pan flute", "panflute", "pan pipes", "팬플룻"),
    "synth lead": ("synth", "synthesizer", "synth lead", "lead synth", "신디사이저", "신스"),
    "synth pad": ("pad", "synth pad", "pads", "패드"),
    "sitar": ("sitar", "시타르"),
    "banjo": ("banjo", "밴조"),
    "koto": ("koto", "가야금"),
    "kalimba": ("kalimba", "칼림바"),
    "bagpipe": ("bagpipe", "bagpipes", "백파이프"),
    "fiddle": ("fiddle",),
    "steel drums": ("steel drum", "steel drums", "steelpan", "steel pan"),
    DRUMS: ("drums", "drum", "drum kit", "percussion", "beat", "beats", "드럼", "타악기"),
}


@dataclass(frozen=True, slots=True)
class Style:
    """What a mood or style word sets: key, mode, chords, tempo and ensemble."""

    name: str
    tonic: int  # pitch class, 0 = C
    minor: bool
    progression: tuple[str, ...]  # Roman numerals, one per bar (or two, see ``bars_per_chord``)
    bpm: int
    ensemble: tuple[str, ...]  # instrument names (and "drums") when the prompt names none
    drums: str  # drum pattern when drums play
    keys: str  # what keys and guitars play: arpeggio, alberti, block, strum, comp
    bass: str  # roots, pop, walking, pulse, sustain, octave
    density: float  # 0-1: how busy the melody is
    energy: float  # 0-1: loudness
    swing: bool = False
    beats_per_bar: int = 4
    bars_per_chord: int = 1
    words: tuple[str, ...] = ()
    drum_kit: int = 0  # General MIDI drum kit (program on channel 10)
    genre: bool = False  # a genre sets the arrangement; a mood word then only sets the mode
    other_mode: tuple[str, ...] = ()  # the progression in the other mode (major <-> minor)

    def progression_for(self, minor: bool) -> tuple[str, ...]:
        if minor == self.minor:
            return self.progression
        return self.other_mode or GENERIC_PROGRESSIONS[minor]


GENERIC_PROGRESSIONS = {False: ("I", "V", "vi", "IV"), True: ("i", "VI", "III", "VII")}


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "happy", 0, False, ("I", "V", "vi", "IV"), 116,
            ("piano", "acoustic guitar", "bass", DRUMS), "pop", "arpeggio", "pop", 0.7, 0.75,
            words=("happy", "cheerful", "joyful", "bright", "fun", "playful", "sunny",
                   "upbeat", "pop", "행복", "신나는", "밝은", "경쾌", "즐거운", "기쁜"),
        ),
        Style(
            "sad", 9, True, ("i", "VI", "III", "VII"), 70,
            ("piano", "strings", "cello"), "halftime", "arpeggio", "sustain", 0.45, 0.5,
            words=("sad", "melancholic", "melancholy", "sorrowful", "lonely", "nostalgic",
                   "emotional", "tearful", "ballad", "슬픈", "슬픔", "우울",
                   "쓸쓸", "그리운", "발라드"),
        ),
        Style(
            "calm", 5, False, ("I", "vi", "IV", "V"), 76,
            ("piano", "synth pad", "harp"), "halftime", "arpeggio", "sustain", 0.35, 0.45,
            bars_per_chord=2,
            words=("calm", "peaceful", "relaxing", "relaxed", "gentle", "soft", "serene",
                   "meditative", "meditation", "sleep", "soothing", "quiet", "잔잔", "평화",
                   "차분", "편안", "명상", "고요"),
        ),
        Style(
            "epic", 2, True, ("i", "VI", "III", "VII"), 96,
            ("strings", "brass", "french horn", "timpani", DRUMS), "epic", "block", "pulse",
            0.5, 0.95, drum_kit=48,
            words=("epic", "heroic", "cinematic", "powerful", "triumphant", "majestic",
                   "orchestral", "battle", "adventure", "trailer", "웅장", "장엄", "서사",
                   "영웅", "비장"),
        ),
        Style(
            "dark", 4, True, ("i", "VI", "iv", "V"), 80,
            ("strings", "synth pad", "piano"), "halftime", "arpeggio", "pulse", 0.35, 0.6,
            words=("dark", "mysterious", "suspense", "suspenseful", "tense", "spooky",
                   "horror", "eerie", "ominous", "scary", "어두운", "무서운", "신비",
                   "긴장", "공포"),
        ),
        Style(
            "romantic", 3, False, ("I", "vi", "ii", "V"), 84,
            ("piano", "strings", "flute"), "halftime", "arpeggio", "roots", 0.5, 0.55,
            words=("romantic", "love", "tender", "sweet", "dreamy", "wedding", "로맨틱",
                   "사랑", "달콤", "몽환"),
        ),
        Style(
            "rock", 4, True, ("i", "VI", "III", "VII"), 132,
            ("distorted guitar", "bass", DRUMS), "rock", "block", "pulse", 0.6, 0.9,
            drum_kit=16,
            genre=True, other_mode=("I", "bVII", "IV", "I"),
            words=("rock", "energetic", "intense", "aggressive", "driving", "powerful rock",
                   "punk", "metal", "록", "락", "강렬", "에너지"),
        ),
        Style(
            "jazz", 10, False, ("ii7", "V7", "Imaj7", "VI7"), 120,
            ("saxophone", "piano", "acoustic bass", DRUMS), "swing", "comp", "walking",
            0.65, 0.65, swing=True, drum_kit=32,
            genre=True, other_mode=("i7", "iv7", "V7", "i7"),
            words=("jazz", "jazzy", "swing", "lounge", "smooth", "bebop", "재즈", "스윙"),
        ),
        Style(
            "lofi", 5, False, ("ii7", "V7", "Imaj7", "vi7"), 82,
            ("electric piano", "bass", DRUMS), "boombap", "block", "roots", 0.4, 0.55,
            swing=True,
            genre=True, other_mode=("i7", "iv7", "VI7", "V7"),
            words=("lofi", "lo-fi", "hip hop", "hiphop", "chillhop", "chill", "study",
                   "로파이", "힙합"),
        ),
        Style(
            "ambient", 0, False, ("Imaj7", "IVmaj7"), 64,
            ("synth pad", "piano"), "halftime", "arpeggio", "sustain", 0.15, 0.4,
            bars_per_chord=2,
            genre=True, other_mode=("i7", "VImaj7"),
            words=("ambient", "atmospheric", "space", "spacey", "drone", "ethereal",
                   "앰비언트", "우주"),
        ),
        Style(
            "dance", 9, True, ("i", "VI", "III", "VII"), 126,
            ("synth lead", "synth bass", "synth pad", DRUMS), "fouronfloor", "block",
            "octave", 0.6, 0.85, drum_kit=25,
            genre=True, other_mode=("I", "V", "vi", "IV"),
            words=("dance", "edm", "electronic", "techno", "house", "disco", "club",
                   "party", "댄스", "일렉트로닉", "클럽"),
        ),
        Style(
            "waltz", 2, False, ("I", "IV", "V", "I"), 150,
            ("piano", "strings"), "waltz", "block", "roots", 0.55, 0.6, beats_per_bar=3,
            genre=True, other_mode=("i", "iv", "V", "i"),
            words=("waltz", "왈츠"),
        ),
        Style(
            "classical", 7, False, ("I", "IV", "ii", "V"), 96,
            ("piano", "strings"), "halftime", "alberti", "roots", 0.6, 0.6,
            genre=True, other_mode=("i", "iv", "V", "i"),
            words=("classical", "baroque", "elegant", "클래식", "우아"),
        ),
        Style(
            "folk", 7, False, ("I", "IV", "I", "V"), 104,
            ("acoustic guitar", "fiddle", "bass"), "pop", "strum", "roots", 0.6, 0.65,
            genre=True, other_mode=("i", "VII", "VI", "V"),
            words=("folk", "country", "acoustic", "campfire", "포크", "컨트리"),
        ),
    )
}  # fmt: skip
DEFAULT_STYLE = "happy"

TEMPO_WORDS: dict[str, float] = {  # tempo multipliers, applied when no bpm is given
    "very slow": 0.7, "slow": 0.8, "slowly": 0.8, "relaxed tempo": 0.85, "moderate": 1.0,
    "fast": 1.25, "quick": 1.2, "very fast": 1.4, "느린": 0.8, "느리게": 0.8, "빠른": 1.25,
    "빠르게": 1.25,
}  # fmt: skip

NOTE_NAMES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
KEY_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

_BPM = re.compile(
    r"(\d{2,3}(?:\.\d+)?)\s*-?\s*(?:bpm|beats per minute|비피엠)"
    r"|(?:tempo|bpm|템포)\s*(?:of|=|:|at)?\s*(\d{2,3}(?:\.\d+)?)",
    re.IGNORECASE,
)
_KEY = re.compile(
    r"\b(?:in |key of |key: ?)?([a-g])(#|♯|b|♭|-sharp|-flat| sharp| flat)?[ -]?"
    r"(major|minor|maj|min)\b",
    re.IGNORECASE,
)
_KEY_ONLY = re.compile(r"\b(?:in the key of|key of|in key)\s+([a-g])(#|♯|b|♭)?\b", re.IGNORECASE)
_METER = re.compile(r"\b([234])/4\b")


@dataclass(frozen=True, slots=True)
class Interpretation:
    """What the composer took from a prompt; ``understood`` lists the words it used."""

    style: Style  # the arrangement: ensemble, patterns, swing
    mood: Style | None  # a mood word beside a genre word (it set the mode)
    bpm: int
    tonic: int
    minor: bool
    progression: tuple[str, ...]
    beats_per_bar: int
    instruments: tuple[Instrument, ...]  # in the order the prompt named them
    drums: bool
    understood: tuple[str, ...] = field(default=())

    @property
    def key_name(self) -> str:
        return f"{KEY_NAMES[self.tonic]} {'minor' if self.minor else 'major'}"


def _is_korean(word: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in word)


def _pattern(word: str) -> re.Pattern[str]:
    if _is_korean(word):
        return re.compile(re.escape(word))
    plural = "" if word.endswith("s") else "(?:e?s)?"
    return re.compile(rf"(?<![\w-]){re.escape(word)}{plural}(?![\w-])", re.IGNORECASE)


def _vocabulary() -> list[tuple[str, str, str, re.Pattern[str]]]:
    """(kind, target, word, pattern), longest words first."""
    entries = []
    for name, words in INSTRUMENT_WORDS.items():
        entries += [("instrument", name, w, _pattern(w)) for w in words]
    for style in STYLES.values():
        entries += [("style", style.name, w, _pattern(w)) for w in style.words]
    entries += [("tempo", w, w, _pattern(w)) for w in TEMPO_WORDS]
    entries.sort(key=lambda e: -len(e[2]))
    return entries


VOCABULARY = _vocabulary()


class _Claims:
    """Which characters of the prompt a word has already used, and what was found."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.taken = [False] * len(text)
        self.found: list[tuple[int, str, str, str]] = []  # position, kind, target, word

    def claim(self, match: re.Match[str], kind: str, target: str = "") -> bool:
        start, end = match.span()
        if any(self.taken[start:end]):
            return False
        self.taken[start:end] = [True] * (end - start)
        self.found.append((start, kind, target, match.group(0)))
        return True


def _key(claims: _Claims) -> tuple[int | None, bool | None]:
    """The tonic pitch class and minor-ness a prompt names ("in D minor"), if any."""
    for regex in (_KEY, _KEY_ONLY):
        match = regex.search(claims.text)
        if match is None or not claims.claim(match, "key"):
            continue
        tonic = NOTE_NAMES[match.group(1).lower()]
        accidental = (match.group(2) or "").strip(" -").lower()
        if accidental in ("#", "♯", "sharp"):
            tonic += 1
        elif accidental in ("b", "♭", "flat"):
            tonic -= 1
        mode = match.group(3).lower() if regex is _KEY else "major"
        return tonic % 12, mode.startswith("min")
    return None, None


def parse_prompt(prompt: str) -> Interpretation:
    claims = _Claims(" ".join(prompt.split()))
    text = claims.text
    bpm: float | None = None
    for match in _BPM.finditer(text):
        if claims.claim(match, "bpm"):
            bpm = float(match.group(1) or match.group(2))
            break
    tonic, minor = _key(claims)
    beats: int | None = None
    meter = _METER.search(text)
    if meter and claims.claim(meter, "meter"):
        beats = int(meter.group(1))
    for kind, target, _word, pattern in VOCABULARY:
        for match in pattern.finditer(text):
            claims.claim(match, kind, target)
    found = sorted(claims.found)
    styles = [STYLES[target] for _, kind, target, _ in found if kind == "style"]
    genres = [s for s in styles if s.genre]
    moods = [s for s in styles if not s.genre]
    style = genres[0] if genres else moods[0] if moods else STYLES[DEFAULT_STYLE]
    mood = moods[0] if genres and moods else None
    # a mood beside a genre sets the mode (and its key), the genre keeps its chords
    key_from = mood if mood is not None and mood.minor != style.minor else style
    if minor is None:
        minor = key_from.minor
    if tonic is None:
        tonic = key_from.tonic
    named: list[str] = []
    for _, kind, target, _ in found:
        if kind == "instrument" and target not in named:
            named.append(target)
    # named instruments make the band; with none named (or only drums) the style's
    # ensemble plays, its drums only when no instrument at all was named
    melodic = [INSTRUMENTS[n] for n in named if n != DRUMS]
    drums = DRUMS in named if named else DRUMS in style.ensemble
    if not melodic:
        melodic = [INSTRUMENTS[n] for n in style.ensemble if n != DRUMS]
    if bpm is None:
        factor = 1.0
        for _, kind, target, _ in found:
            if kind == "tempo":
                factor = TEMPO_WORDS[target]
                break
        bpm = style.bpm * factor
    if beats is None:
        beats = style.beats_per_bar
    return Interpretation(
        style=style,
        bpm=round(min(MAX_BPM, max(MIN_BPM, bpm))),
        mood=mood,
        tonic=tonic,
        minor=minor,
        progression=style.progression_for(minor),
        beats_per_bar=beats,
        instruments=tuple(melodic[:8]),
        drums=drums,
        understood=tuple(word for _, _, _, word in found),
    )


def vocabulary_summary() -> dict[str, list[str]]:
    """The understood words by kind (for the catalog's capabilities and the docs)."""
    return {
        "instruments": sorted(INSTRUMENT_WORDS),
        "styles": sorted(STYLES),
        "tempo_words": sorted(TEMPO_WORDS),
    }
