"""Real RAW files made in the tests: DNGs written with ``tifffile`` (a Bayer mosaic, the DNG
tags LibRaw needs, optionally an embedded JPEG preview), and the other formats Pillow writes
or that are simple enough to write by hand (PSD, CUR)."""

from __future__ import annotations

import io
import struct

import numpy as np
import tifffile
from PIL import Image

_IDENTITY = (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1)
_WHITE = 4095


def mosaic(scene: Image.Image) -> np.ndarray:
    """An RGGB Bayer mosaic (12-bit) of an RGB scene."""
    rgb = np.asarray(scene.convert("RGB"), dtype=np.float64) / 255.0 * _WHITE
    out = np.empty(rgb.shape[:2], dtype=np.uint16)
    out[0::2, 0::2] = rgb[0::2, 0::2, 0]
    out[0::2, 1::2] = rgb[0::2, 1::2, 1]
    out[1::2, 0::2] = rgb[1::2, 0::2, 1]
    out[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return out


def dng(
    scene: Image.Image,
    *,
    preview: Image.Image | None = None,
    orientation: int = 1,
    make: str = "Test",
) -> bytes:
    """A DNG of ``scene`` (even sides), with a JPEG preview in IFD0 if given (the raw then
    lives in a SubIFD, as cameras write it)."""
    cfa = mosaic(scene)
    raw_tags = [
        (33421, "H", 2, (2, 2)),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2)),  # CFAPattern: RGGB
        (50717, "I", 1, _WHITE),  # WhiteLevel
        (50721, "2i", 9, _IDENTITY),  # ColorMatrix1
    ]
    top = [
        (50706, "B", 4, (1, 4, 0, 0)),  # DNGVersion
        (50708, "s", 0, "imagefind test camera"),  # UniqueCameraModel
        (271, "s", 0, make),
        (272, "s", 0, "T1"),
        (274, "H", 1, orientation),
        (50721, "2i", 9, _IDENTITY),
    ]
    buf = io.BytesIO()
    if preview is None:
        tifffile.imwrite(buf, cfa, photometric=32803, subfiletype=0, extratags=top + raw_tags)
        return buf.getvalue()
    jpeg = io.BytesIO()
    preview.convert("RGB").save(jpeg, "JPEG", quality=90)
    payload = jpeg.getvalue()
    width, height = preview.size
    with tifffile.TiffWriter(buf) as tw:
        # An uncompressed placeholder whose strip is then pointed at the JPEG bytes (tifffile
        # writes JPEG-compressed strips only with imagecodecs).
        tw.write(
            np.zeros((height, width, 3), np.uint8),
            photometric="rgb",
            subfiletype=1,
            subifds=1,
            rowsperstrip=height,
            extratags=[*top, (65000, "B", len(payload), payload)],
        )
        tw.write(cfa, photometric=32803, subfiletype=0, extratags=raw_tags)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tf:
        tags = tf.pages[0].tags
        places = {code: (tags[code].valueoffset, tags[code].dtype) for code in (259, 273, 279)}
        at = tags[65000].valueoffset
    for code, value in ((259, 7), (273, at), (279, len(payload))):
        offset, dtype = places[code]
        fmt = "<H" if int(dtype) == 3 else "<I"
        struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def psd(image: Image.Image) -> bytes:
    """A flat RGB PSD (no layers: the composite is the image), uncompressed."""
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers: empty
    planes = b"".join(rgb[:, :, c].tobytes() for c in range(3))
    return header + sections + struct.pack(">H", 0) + planes


def cur(sizes: list[int], colour: tuple[int, int, int]) -> bytes:
    """A Windows cursor with one 32-bit BMP entry per size (square)."""
    entries, blobs = [], []
    offset = 6 + 16 * len(sizes)
    for side in sizes:
        bgra = np.zeros((side, side, 4), np.uint8)
        bgra[:, :] = (colour[2], colour[1], colour[0], 255)
        mask = b"\x00" * (((side + 31) // 32) * 4 * side)
        dib = struct.pack("<IiiHHIIiiII", 40, side, side * 2, 1, 32, 0, 0, 0, 0, 0, 0)
        blob = dib + bgra[::-1].tobytes() + mask
        entries.append(
            struct.pack("<BBBBHHII", side % 256, side % 256, 0, 0, 0, 0, len(blob), offset)
        )
        blobs.append(blob)
        offset += len(blob)
    return struct.pack("<HHH", 0, 2, len(sizes)) + b"".join(entries) + b"".join(blobs)
