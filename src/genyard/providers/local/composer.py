"""An algorithmic composer: an :class:`Interpretation` of a prompt becomes a MIDI file.

No model is involved: chords follow the style's progression (Roman numerals), a
seeded random walk over the chord and scale tones makes a melody out of two one-bar
motifs repeated in four-bar phrases (A A B A), and fixed patterns per style play the
accompaniment, the bass line and the drums (General MIDI channel 10). The bars are
planned so the piece fills ``duration`` seconds: the last bar is the tonic chord,
held to the end (the renderer trims and fades it to the exact length). The same
interpretation, duration and seed always give the same bytes.
"""

from __future__ import annotations

import io
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import mido

from genyard.providers.local.music_words import KEY_NAMES, Instrument, Interpretation

TICKS = 480  # per beat
DRUM_CHANNEL = 9  # "channel 10" in General MIDI's 1-based numbering
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
_NUMERAL = re.compile(r"^(b|#)?(vii|vi|v|iv|iii|ii|i)(°|o|ø)?(maj7|7)?$", re.IGNORECASE)
_DEGREES = ("i", "ii", "iii", "iv", "v", "vi", "vii")
KICK, SIDE, SNARE, CLAP, HAT, PEDAL, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 39, 42, 44, 46, 49, 51
LOW_TOM, MID_TOM, HIGH_TOM = 45, 47, 50


@dataclass(frozen=True, slots=True)
class Chord:
    root: int  # pitch class
    intervals: tuple[int, ...]

    @property
    def tones(self) -> frozenset[int]:
        return frozenset((self.root + i) % 12 for i in self.intervals)


def parse_chord(numeral: str, tonic: int, minor: bool) -> Chord:
    """A Roman numeral in a key: case gives the quality (V major, v minor), ``°``
    diminished, ``ø`` half-diminished, ``7`` a seventh (dominant on an upper-case
    numeral), ``maj7`` a major seventh; ``b``/``#`` alter the root."""
    match = _NUMERAL.match(numeral)
    if match is None:
        raise ValueError(f"not a Roman numeral chord: {numeral!r}")
    accidental, degree, mark, seventh = match.groups()
    scale = MINOR if minor else MAJOR
    root = (tonic + scale[_DEGREES.index(degree.lower())]) % 12
    root = (root + {"b": -1, "#": 1}.get(accidental or "", 0)) % 12
    if mark in ("°", "o"):
        intervals: tuple[int, ...] = (0, 3, 6) + ((9,) if seventh else ())
    elif mark == "ø":
        intervals = (0, 3, 6, 10)
    else:
        intervals = (0, 4, 7) if degree.isupper() else (0, 3, 7)
        if seventh == "maj7":
            intervals += (11,)
        elif seventh == "7":
            intervals += (10,)
    return Chord(root, intervals)


@dataclass(frozen=True, slots=True)
class Part:
    instrument: Instrument
    role: str  # melody, harmony, pad, counter, bass, left_hand
    channel: int


def arrange(interp: Interpretation) -> list[Part]:
    """Who plays what: the first solo instrument (else the first keys or ensemble one)
    the melody, the first keys or ensemble instrument the chords, the first bass the
    bass line (else the chord instrument's left hand when it is a keyboard or guitar);
    further instruments hold chords (pads) or a counter-line."""
    instruments = list(interp.instruments)
    solos = [i for i in instruments if i.family == "solo"]
    polys = [i for i in instruments if i.family in ("keys", "ensemble")]
    basses = [i for i in instruments if i.family == "bass"]
    roles: list[tuple[Instrument, str]] = []
    melody = solos[0] if solos else polys[0] if polys else None
    if melody is not None:
        roles.append((melody, "melody"))
    chords = [p for p in polys if p is not melody]
    harmony = chords[0] if chords else melody if melody in polys else None
    if harmony is not None:
        roles.append((harmony, "harmony"))
    roles += [(p, "pad") for p in chords[1:]]
    roles += [(s, "counter") for s in solos[1:]]
    if basses:
        roles.append((basses[0], "bass"))
        roles += [(b, "pad" if b.name == "timpani" else "counter") for b in basses[1:]]
    elif harmony is not None and harmony.family == "keys":
        roles.append((harmony, "left_hand"))
    channels = [c for c in range(16) if c != DRUM_CHANNEL]
    return [Part(inst, role, channels[n]) for n, (inst, role) in enumerate(roles[:15])]


@dataclass(slots=True)
class _Events:
    """Notes and controls of one track, in ticks, turned into delta times at the end."""

    channel: int
    swing: bool
    limit: float  # beats: notes of the body stop here, where the ending starts
    items: list[tuple[int, int, mido.Message]] = field(default_factory=list)

    def tick(self, beat: float) -> int:
        whole = math.floor(beat + 1e-9)
        if self.swing and abs(beat - whole - 0.5) < 1e-6:
            beat = whole + 2 / 3
        return max(0, round(beat * TICKS))

    def note(
        self, beat: float, length: float, note: int, velocity: int, ending: bool = False
    ) -> None:
        if not ending:
            if beat >= self.limit - 1e-9:
                return
            length = min(length, self.limit - beat)
        if not 0 <= note <= 127 or length <= 0:
            return
        start = self.tick(beat)
        end = max(start + 1, self.tick(beat + length) - 1)
        velocity = max(1, min(127, velocity))
        self.items.append((start, 1, mido.Message("note_on", channel=self.channel, note=note,
                                                  velocity=velocity)))  # fmt: skip
        self.items.append((end, 0, mido.Message("note_off", channel=self.channel, note=note)))

    def control(self, message: mido.Message) -> None:
        self.items.append((0, -1, message))

    def track(self, name: str) -> mido.MidiTrack:
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        now = 0
        for tick, _, message in sorted(self.items, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        return track


class Composer:
    """One piece: call :meth:`midi` once.

    The piece is ``bars`` bars of the progression (the last one may be cut short) and
    an ending: the tonic chord from ``final_beat`` (on a beat, 1.5-3 s before the end)
    ringing to the end of the clip."""

    def __init__(self, interp: Interpretation, duration: float, seed: int) -> None:
        self.interp = interp
        self.duration = duration
        self.rng = random.Random(seed)
        self.beats = interp.beats_per_bar
        beat_seconds = 60 / interp.bpm
        ending = min(duration, max(1.5, min(3.0, self.beats * beat_seconds)))
        self.end_beat = duration / beat_seconds
        self.final_beat = max(0, math.floor((duration - ending) / beat_seconds + 1e-9))
        self.bars = math.ceil(self.final_beat / self.beats)
        self.scale = frozenset((interp.tonic + s) % 12 for s in (MINOR if interp.minor else MAJOR))
        self.chords = [self._chord_of_bar(b) for b in range(self.bars)]
        self.tonic = parse_chord("i" if interp.minor else "I", interp.tonic, interp.minor)
        self.volume = 0.6 + 0.4 * interp.style.energy
        # a bar of accompaniment before the melody (and drums) come in, when there is one
        self.parts = arrange(interp)
        accompanied = any(p.role != "melody" for p in self.parts)
        self.intro = 1 if self.bars >= 6 and accompanied else 0

    # -- harmony ---------------------------------------------------------------------

    def _chord_of_bar(self, bar: int) -> Chord:
        interp = self.interp
        if bar == self.bars - 1 and self.bars >= 3:  # a cadence: V before the tonic
            numeral = "V7" if interp.style.swing else "V"
        else:
            progression = interp.progression
            numeral = progression[(bar // interp.style.bars_per_chord) % len(progression)]
        return parse_chord(numeral, interp.tonic, interp.minor)

    @property
    def ending_beats(self) -> float:
        return max(0.5, self.end_beat - self.final_beat)

    @staticmethod
    def voicing(chord: Chord, low: int) -> list[int]:
        """The chord's tones in close position from the first one at or above ``low``."""
        return sorted(low + ((chord.root + i) % 12 - low) % 12 for i in chord.intervals)

    @staticmethod
    def bass_note(pc: int, low: int = 36) -> int:
        return low + (pc - low) % 12

    # -- the piece -------------------------------------------------------------------

    def midi(self) -> mido.MidiFile:
        interp = self.interp
        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS)
        conductor = mido.MidiTrack(
            [
                mido.MetaMessage("track_name", name="genyard composer"),
                mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(interp.bpm)),
                mido.MetaMessage("time_signature", numerator=self.beats, denominator=4),
                mido.MetaMessage("key_signature", key=_key_signature(interp)),
            ]
        )
        midi.tracks.append(conductor)
        reverb = 80 if interp.style.name in ("calm", "ambient", "sad", "romantic") else 50
        for part in self.parts:
            events = _Events(part.channel, interp.style.swing, self.final_beat)
            events.control(mido.Message("program_change", channel=part.channel,
                                        program=part.instrument.program))  # fmt: skip
            for number, value in ((7, _VOLUME[part.role]), (10, _PAN[part.role]), (91, reverb)):
                events.control(mido.Message("control_change", channel=part.channel,
                                            control=number, value=value))  # fmt: skip
            getattr(self, f"_play_{part.role}")(events, part.instrument)
            midi.tracks.append(events.track(f"{part.instrument.name} ({part.role})"))
        if interp.drums:
            drums = _Events(DRUM_CHANNEL, interp.style.swing, self.final_beat)
            drums.control(mido.Message("program_change", channel=DRUM_CHANNEL,
                                       program=interp.style.drum_kit))  # fmt: skip
            drums.control(mido.Message("control_change", channel=DRUM_CHANNEL, control=7,
                                       value=100))  # fmt: skip
            self._play_drums(drums)
            midi.tracks.append(drums.track("drums"))
        return midi

    def _velocity(self, base: float, accent: bool = False) -> int:
        return round(base * self.volume + (8 if accent else 0) + self.rng.randint(-5, 5))

    def _ending(self, events: _Events, notes: Sequence[int], base: float) -> None:
        for note in notes:
            events.note(self.final_beat, self.ending_beats, note, self._velocity(base, True), True)

    # -- melody ----------------------------------------------------------------------

    def _rhythm(self) -> list[tuple[float, float]]:
        density = self.interp.style.density
        pools = _RHYTHMS.get(self.beats) or [[[(float(b), 1.0) for b in range(self.beats)]]]
        band = 0 if density < 0.4 else 1 if density < 0.6 else 2
        pool = pools[min(band, len(pools) - 1)]
        return list(self.rng.choice(pool))

    def _motif(self) -> tuple[list[tuple[float, float]], list[int], list[bool]]:
        rhythm = self._rhythm()
        steps = [self.rng.choice((-2, -1, -1, 1, 1, 2, 0, 3, -3)) for _ in rhythm]
        rests = [False] + [self.rng.random() < 0.12 for _ in rhythm[1:]]
        return rhythm, steps, rests

    def _play_melody(self, events: _Events, instrument: Instrument) -> None:
        center = instrument.center
        motifs = [self._motif(), self._motif()]
        plan = (0, 0, 1, 0)
        first = self.chords[0] if self.chords else self.tonic
        previous = self._nearest(self._chord_tones(first, center), center)
        for bar in range(self.intro, self.bars):
            chord = self.chords[bar]
            start = bar * self.beats
            rhythm, steps, rests = motifs[plan[(bar - self.intro) % 4]]
            phrase_end = (bar - self.intro) % 4 == 3
            allowed = self._allowed(chord, center)
            tones = self._chord_tones(chord, center)
            for index, ((at, length), step, rest) in enumerate(
                zip(rhythm, steps, rests, strict=True)
            ):
                strong = at in (0.0, 2.0)
                candidates = tones if strong else allowed
                position = self._nearest_index(allowed, previous) + step
                position = min(max(position, 0), len(allowed) - 1)
                note = self._nearest(candidates, allowed[position])
                if phrase_end and index == len(rhythm) - 1:
                    length = self.beats - at  # hold the phrase's last note
                    note = self._nearest(tones, note)
                previous = note
                if not rest:
                    events.note(start + at, length * 0.95, note, self._velocity(96, strong))
        home = [n for n in self._chord_tones(self.tonic, center) if n % 12 == self.tonic.root]
        self._ending(events, [self._nearest(home or [previous], previous)], 92)

    def _chord_tones(self, chord: Chord, center: int) -> list[int]:
        return [n for n in range(center - 10, center + 11) if n % 12 in chord.tones]

    def _allowed(self, chord: Chord, center: int) -> list[int]:
        """Chord tones plus scale tones that are not a semitone from a chord tone."""
        tones = chord.tones
        ok = set(tones)
        for pc in self.scale:
            if all(min((pc - t) % 12, (t - pc) % 12) != 1 for t in tones):
                ok.add(pc)
        return [n for n in range(center - 10, center + 11) if n % 12 in ok]

    @staticmethod
    def _nearest(notes: Sequence[int], target: int) -> int:
        return min(notes, key=lambda n: (abs(n - target), n))

    @staticmethod
    def _nearest_index(notes: Sequence[int], target: int) -> int:
        return min(range(len(notes)), key=lambda i: (abs(notes[i] - target), i))

    def _play_counter(self, events: _Events, instrument: Instrument) -> None:
        previous = instrument.center - 5
        for bar in range(self.bars):
            tones = self._chord_tones(self.chords[bar], instrument.center - 5)
            previous = self._nearest(tones, previous)
            events.note(bar * self.beats, self.beats * 0.98, previous, self._velocity(64))
        tones = self._chord_tones(self.tonic, instrument.center - 5)
        self._ending(events, [self._nearest(tones, previous)], 64)

    # -- chords ----------------------------------------------------------------------

    def _play_harmony(self, events: _Events, instrument: Instrument) -> None:
        style = self.interp.style
        if instrument.family == "ensemble":
            pattern = "pulse" if style.energy >= 0.9 else "sustain"
        elif "guitar" in instrument.name or instrument.name == "banjo":
            pattern = "comp" if style.keys == "comp" else "strum"
        else:
            pattern = style.keys
        low = 55 if instrument.family == "ensemble" else 57 if pattern != "strum" else 52
        for bar in range(self.bars):
            notes = self.voicing(self.chords[bar], low)
            self._chord_pattern(events, pattern, notes, bar * self.beats)
        self._ending(events, self.voicing(self.tonic, low), 70)

    def _play_pad(self, events: _Events, instrument: Instrument) -> None:
        if instrument.name == "timpani":
            for bar in range(self.bars):
                note = self.bass_note(self.chords[bar].root, 40)
                events.note(bar * self.beats, 1.0, note, self._velocity(90, True))
            self._ending(events, [self.bass_note(self.tonic.root, 40)], 90)
            return
        for bar in range(self.bars):
            for note in self.voicing(self.chords[bar], 60):
                events.note(bar * self.beats, self.beats * 0.98, note, self._velocity(55))
        self._ending(events, self.voicing(self.tonic, 60), 55)

    def _chord_pattern(self, events: _Events, pattern: str, notes: list[int], start: float) -> None:
        beats = self.beats
        v = self._velocity
        if pattern == "sustain":
            for note in notes:
                events.note(start, beats * 0.98, note, v(62))
        elif pattern == "pulse":
            for eighth in range(beats * 2):
                for note in notes:
                    events.note(start + eighth / 2, 0.4, note, v(66, eighth % 2 == 0))
        elif pattern == "arpeggio":
            order = [*notes, notes[0] + 12, *reversed(notes[1:])]
            for eighth in range(beats * 2):
                events.note(start + eighth / 2, 0.9, order[eighth % len(order)], v(66, eighth == 0))
        elif pattern == "alberti":
            low, mid, high = notes[0], notes[1], notes[-1]
            for eighth in range(beats * 2):
                note = (low, high, mid, high)[eighth % 4]
                events.note(start + eighth / 2, 0.45, note, v(62, eighth == 0))
        elif pattern == "strum":
            for beat in range(beats):
                for offset in (0.0, 0.5):
                    strum = notes if offset == 0 else list(reversed(notes))
                    for n, note in enumerate(strum):
                        at = start + beat + offset + n * 0.03
                        events.note(at, 0.45, note, v(70 if offset == 0 else 54, beat == 0))
        elif pattern == "comp":
            hits = ((0.0, 1.0), (1.5, 0.5), (3.0, 0.5)) if beats == 4 else ((0.0, 1.0), (1.5, 0.5))
            for at, length in hits:
                for note in notes:
                    events.note(start + at, length * 0.9, note, v(64, at == 0))
        else:  # block: half notes in 4/4, "oom-pah-pah" chords on 2 and 3 in 3/4
            block: tuple[tuple[float, float], ...] = ((0.0, float(beats)),)
            if beats == 3:
                block = ((1.0, 0.9), (2.0, 0.9))
            elif beats == 4:
                block = ((0.0, 2.0), (2.0, 2.0))
            for at, length in block:
                for note in notes:
                    events.note(start + at, length * 0.95, note, v(66, at == 0))

    # -- bass ------------------------------------------------------------------------

    def _play_bass(self, events: _Events, instrument: Instrument) -> None:
        if instrument.name == "timpani":
            self._bass_line(events, "roots", 40)
        else:
            self._bass_line(events, self.interp.style.bass, 36)

    def _play_left_hand(self, events: _Events, instrument: Instrument) -> None:
        pattern = "sustain" if self.interp.style.bass in ("sustain", "pulse") else "roots"
        self._bass_line(events, pattern, 40)

    def _bass_line(self, events: _Events, pattern: str, low: int) -> None:
        beats = self.beats
        v = self._velocity
        for bar in range(self.bars):
            chord = self.chords[bar]
            root = self.bass_note(chord.root, low)
            fifth = root + 7
            start = bar * self.beats
            if pattern == "sustain":
                events.note(start, beats * 0.98, root, v(80))
            elif pattern == "pulse":
                for eighth in range(beats * 2):
                    events.note(start + eighth / 2, 0.4, root, v(84, eighth % 2 == 0))
            elif pattern == "octave":
                for eighth in range(beats * 2):
                    events.note(start + eighth / 2, 0.4, root + 12 * (eighth % 2), v(86))
            elif pattern == "walking" and beats >= 3:
                following = self.chords[bar + 1] if bar + 1 < self.bars else self.tonic
                target = self.bass_note(following.root, low)
                third = root + (chord.intervals[1] if len(chord.intervals) > 1 else 4)
                line = [*[root, third, fifth][: beats - 1], target + self.rng.choice((-1, 1))]
                for beat, note in enumerate(line):
                    events.note(start + beat, 0.9, note, v(84, beat == 0))
            elif pattern == "pop" and beats == 4:
                for at, length, note in ((0, 1.5, root), (1.5, 0.5, root), (2, 1, fifth),
                                         (3, 1, root)):  # fmt: skip
                    events.note(start + at, length * 0.9, note, v(86, at == 0))
            elif beats == 3:  # roots in 3/4: the "oom" of oom-pah-pah
                events.note(start, 0.9, root, v(86, True))
            else:  # roots
                events.note(start, beats / 2 * 0.95, root, v(86, True))
                events.note(start + beats / 2, beats / 2 * 0.95, fifth, v(80))
        self._ending(events, [self.bass_note(self.tonic.root, low)], 88)

    # -- drums -----------------------------------------------------------------------

    def _play_drums(self, drums: _Events) -> None:
        style = self.interp.style
        name = "waltz" if self.beats == 3 else style.drums
        pattern = _DRUMS.get(name, _DRUMS["pop"])
        for bar in range(self.intro, self.bars):
            hits = list(pattern)
            if (bar + 1) % 8 == 0 and self.beats == 4 and bar < self.bars - 1:
                hits = [h for h in hits if h[0] < 3] + [
                    (3 + i / 4, (SNARE, HIGH_TOM, MID_TOM, LOW_TOM)[i], 90) for i in range(4)
                ]
            if (bar - self.intro) % 8 == 0:
                hits.append((0.0, CRASH, 100))
            for at, note, velocity in hits:
                if at < self.beats:
                    drums.note(bar * self.beats + at, 0.25, note, self._velocity(velocity, at == 0))
        self._ending(drums, [CRASH, KICK], 100)


def _key_signature(interp: Interpretation) -> str:
    return KEY_NAMES[interp.tonic] + ("m" if interp.minor else "")


_VOLUME = {"melody": 110, "harmony": 82, "pad": 70, "counter": 72, "bass": 100, "left_hand": 84}
_PAN = {"melody": 64, "harmony": 44, "pad": 84, "counter": 80, "bass": 64, "left_hand": 54}

_RHYTHMS: dict[int, list[list[list[tuple[float, float]]]]] = {
    4: [
        [[(0, 4)], [(0, 2), (2, 2)], [(0, 3), (3, 1)], [(0, 1.5), (1.5, 2.5)]],
        [[(0, 1), (1, 1), (2, 2)], [(0, 2), (2, 1), (3, 1)], [(0, 1.5), (1.5, 0.5), (2, 2)],
         [(0, 1), (1, 0.5), (1.5, 0.5), (2, 2)]],
        [[(0, 0.5), (0.5, 0.5), (1, 1), (2, 0.5), (2.5, 0.5), (3, 1)],
         [(0, 1), (1, 0.5), (1.5, 0.5), (2, 1), (3, 0.5), (3.5, 0.5)],
         [(0, 0.5), (0.5, 0.5), (1, 0.5), (1.5, 0.5), (2, 2)],
         [(0, 1.5), (1.5, 0.5), (2, 0.5), (2.5, 0.5), (3, 1)]],
    ],
    3: [
        [[(0, 3)], [(0, 2), (2, 1)]],
        [[(0, 1), (1, 1), (2, 1)], [(0, 1.5), (1.5, 0.5), (2, 1)], [(0, 2), (2, 1)]],
        [[(0, 0.5), (0.5, 0.5), (1, 1), (2, 1)], [(0, 1), (1, 0.5), (1.5, 0.5), (2, 1)]],
    ],
    2: [
        [[(0, 2)], [(0, 1), (1, 1)]],
        [[(0, 1), (1, 1)], [(0, 1.5), (1.5, 0.5)]],
        [[(0, 0.5), (0.5, 0.5), (1, 1)], [(0, 1), (1, 0.5), (1.5, 0.5)]],
    ],
}  # fmt: skip

_DRUMS: dict[str, list[tuple[float, int, int]]] = {
    "pop": [(0, KICK, 96), (1, SNARE, 88), (2, KICK, 90), (2.5, KICK, 70), (3, SNARE, 88)]
    + [(i / 2, HAT, 60) for i in range(8)],
    "rock": [(0, KICK, 104), (1, SNARE, 100), (2, KICK, 100), (2.5, KICK, 84), (3, SNARE, 100)]
    + [(i / 2, HAT, 76) for i in range(8)],
    "halftime": [(0, KICK, 84), (2, SIDE, 70)] + [(float(i), HAT, 52) for i in range(4)],
    "swing": [(0, RIDE, 76), (1, RIDE, 70), (1.5, RIDE, 60), (2, RIDE, 76), (3, RIDE, 70),
              (3.5, RIDE, 60), (1, PEDAL, 56), (3, PEDAL, 56), (0, KICK, 56)],
    "boombap": [(0, KICK, 96), (1, SNARE, 90), (1.75, KICK, 70), (2.5, KICK, 88), (3, SNARE, 90)]
    + [(i / 2, HAT, 58) for i in range(8)],
    "fouronfloor": [(float(i), KICK, 104) for i in range(4)] + [(1, CLAP, 90), (3, CLAP, 90)]
    + [(i + 0.5, OPEN_HAT, 70) for i in range(4)],
    "epic": [(0, KICK, 100), (0.75, KICK, 80), (2, KICK, 96), (1, SNARE, 92), (3, SNARE, 96),
             (2.5, LOW_TOM, 86), (3.5, MID_TOM, 86)],
    "waltz": [(0, KICK, 86), (1, HAT, 60), (2, HAT, 60)],
}  # fmt: skip


def render_midi_bytes(midi: mido.MidiFile) -> bytes:
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()
