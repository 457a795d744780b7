"""A headless Chromium screenshot of an HTML file, and a standard-library PNG reader to look at it.

Tests use it to prove a page draws what its HTML says: colours counted in the
pixels catch a chart that is in the markup but not on the screen. Chromium
comes from Debian (``apt-get install chromium``; .ci/run installs it when it can).
"""

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def screenshot(html_path, png_path, width=1400, height=2000, timeout=120):
    """Render ``html_path`` in headless Chromium at ``width`` x ``height`` CSS pixels and write ``png_path``.

    --no-sandbox: containers run as root without user namespaces; --disable-dev-shm-usage: a small /dev/shm;
    a throw-away profile so that parallel runs do not share (and lock) one.
    """
    executable = browser()
    if executable is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install chromium)")
    png_path = Path(png_path).resolve()
    png_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--screenshot={png_path}",
            f"--window-size={width},{height}",
            Path(html_path).resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": profile})
    if result.returncode != 0 or not png_path.exists():
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    return png_path


def read_png(path):
    """(width, height, rows) of an 8-bit RGB or RGBA PNG; rows are bytes of 3 or 4 bytes per pixel."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise ValueError(f"{path}: only 8-bit non-interlaced RGB/RGBA is read here, not {header}")
    channels = 3 if colour_type == 2 else 4
    return width, height, unfilter(zlib.decompress(b"".join(idat)), width * channels, height, channels)


def unfilter(raw, stride, height, bpp):
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth): the rows of raw pixel bytes."""
    rows, previous = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], (previous[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise ValueError(f"unknown PNG filter {kind} in row {y}")
        rows.append(bytes(line))
        previous = line
    return rows


def colour_counts(path):
    """How many pixels of each ``#rrggbb`` colour the PNG has (alpha ignored)."""
    width, _, rows = read_png(path)
    channels = len(rows[0]) // width
    counts = Counter()
    for row in rows:
        for x in range(0, len(row), channels):
            counts[row[x : x + 3]] += 1
    return {"#" + key.hex(): n for key, n in counts.items()}
