"""Phone photos (HEIC/HEIF) and AVIF files, end to end: `syncd reconcile` sends them to the
real local gallery as upright JPEGs, and `syncd status --failed` says why a cut one is not."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pillow_heif
from PIL import Image

from devkit.imagegen import decode, make_image

from .site import Site

#: EXIF orientation 6: the stored pixels are shown turned 90 degrees clockwise
ROTATE_CLOCKWISE = 6


def upright_picture(seed: int) -> Image.Image:
    """A test picture as a person sees it: wider than tall, so turning it shows."""
    return decode(make_image(seed, size=(96, 64), fmt="PNG")).convert("RGB")


def encode_sideways(picture: Image.Image, fmt: str) -> bytes:
    """``picture`` as a camera held sideways stores it: the pixels turned a quarter
    anticlockwise, tagged ``ROTATE_CLOCKWISE`` (HEIF keeps that as its own rotation)."""
    pillow_heif.register_heif_opener()  # to write HEIC; syncd registers it itself to read
    exif = Image.Exif()
    exif[0x0112] = ROTATE_CLOCKWISE
    out = io.BytesIO()
    picture.transpose(Image.Transpose.ROTATE_90).save(out, fmt, exif=exif.tobytes(), quality=90)
    return out.getvalue()


def search(site: Site, picture: Image.Image, probe: Path) -> list[dict[str, object]]:
    """The hits of `syncd search --json` with ``picture`` saved as a JPEG at ``probe``."""
    picture.save(probe, "JPEG", quality=85)
    result = site.syncd("search", str(probe), "--json")
    assert result.code in (0, 1), result
    hits: list[dict[str, object]] = json.loads(result.out)
    return hits


def test_phone_photos_are_synced_upright_and_cut_ones_say_why(
    site: Site, tmp_path: Path
) -> None:
    heic, avif = upright_picture(41), upright_picture(42)
    heic_bytes = encode_sideways(heic, "HEIF")
    avif_bytes = encode_sideways(avif, "AVIF")
    (site.root / "iphone").mkdir()
    (site.root / "iphone" / "IMG_0001.HEIC").write_bytes(heic_bytes)
    (site.root / "web.avif").write_bytes(avif_bytes)
    (site.root / "iphone" / "IMG_0002.heic").write_bytes(heic_bytes[: len(heic_bytes) // 2])
    (site.root / "cut.avif").write_bytes(avif_bytes[: len(avif_bytes) // 2])

    result = site.syncd("reconcile")
    assert result.code == 1, result  # some files failed: the cut ones
    assert sorted(item.path for item in site.items()) == ["iphone/IMG_0001.HEIC", "web.avif"]
    assert site.calls() == {"add": 2}
    site.assert_mirrors_disk_but("iphone/IMG_0002.heic", "cut.avif")

    for picture, path in ((heic, "iphone/IMG_0001.HEIC"), (avif, "web.avif")):
        hits = search(site, picture, tmp_path / "probe.jpg")
        assert hits and hits[0]["paths"] == [str(site.root / path)], hits
        assert isinstance(hits[0]["score"], float) and hits[0]["score"] >= 0.9
        # the gallery holds the upright picture: the pixels as stored are another image
        stored = picture.transpose(Image.Transpose.ROTATE_90)
        sideways_hits = search(site, stored, tmp_path / "sideways.jpg")
        assert all(hit["paths"] != [str(site.root / path)] for hit in sideways_hits)

    failed = site.syncd("status", "--failed")
    assert failed.code == 0, failed
    lines = {
        line.strip().split(": ", 1)[0]: line.strip().split(": ", 1)[1]
        for line in failed.out.splitlines()
        if line.startswith("  photos/")
    }
    assert set(lines) == {"photos/iphone/IMG_0002.heic", "photos/cut.avif"}, failed.out
    assert lines["photos/iphone/IMG_0002.heic"].startswith(("truncated HEIF (", "corrupt HEIF ("))
    assert lines["photos/cut.avif"].startswith(("truncated AVIF (", "corrupt AVIF ("))
