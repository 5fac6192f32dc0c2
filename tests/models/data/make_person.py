"""Make ``person.jpg``, the background-removal tests' picture of a person, from genyard's
own DCGAN face model (gan-face-generate, MIT): a generated 64x64 face, scaled to 128x128,
on a flat blue background above a dark, round torso. The face model was trained on
DigiFace-1M (synthetic faces), so the picture shows no real person.

    .venv/bin/python tests/models/data/make_person.py [SEED]
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from genyard.providers.local.dcgan import DcganFacesProvider, _generate

SEED = 1
SIZE = 320
BACKGROUND = (70, 130, 180)
FACE_BOX = (96, 100, 224, 228)  # left, top, right, bottom
TORSO = (60, 230, 260, 420)


def make(seed: int = SEED) -> Image.Image:
    generator = DcganFacesProvider()._load()
    face = Image.open(io.BytesIO(_generate(generator, seed, 1)[0])).convert("RGB")
    picture = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    ImageDraw.Draw(picture).ellipse(TORSO, fill=(40, 40, 60))
    left, top, right, bottom = FACE_BOX
    picture.paste(face.resize((right - left, bottom - top), Image.Resampling.LANCZOS), (left, top))
    return picture


if __name__ == "__main__":
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else SEED
    make(seed).save(Path(__file__).with_name("person.jpg"), "JPEG", quality=92)
