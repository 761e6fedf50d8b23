"""The file format translated photos are written in (`translate --format / --png-compress /
--quality`): PNG (default), JPEG or WebP, and what each costs.

PNG is lossless; its zlib level trades CPU for size, never pixels. PNG_COMPRESS, the
default level, is 1: the issue measured 61 ms per 640x480 photo at level 1 against 366 ms at
Pillow's default 6 (about 100 CPU-hours per million frames); here (2-core AVX-512 BF16 CPU,
loaded) scikit-image photos at 640x480 took 3-5x longer at 6, for files 9-10 % smaller
(docs/speed.md). 6 (or 9) is for archives where bytes matter more than CPU time.
JPEG takes --quality (default 95, 4:4:4 chroma at 90 and above); WebP is lossless unless
--quality is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from PIL import Image

FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}  # --format -> the output suffix
PNG_COMPRESS = 1  # zlib level: 3-6x less CPU than 6 per photo, files ~10 % larger
JPEG_QUALITY = 95


@dataclass(frozen=True)
class OutputFormat:
    """How a translated photo is encoded: `format` a key of FORMATS; `png_compress` 0-9;
    `quality` 1-100 for jpg / webp (None: jpg 95, webp lossless)."""

    format: str = "png"
    png_compress: int = PNG_COMPRESS
    quality: int | None = None

    @property
    def suffix(self) -> str:
        return FORMATS[self.format]

    def save(self, img: Image.Image, f: IO[bytes]) -> None:
        """Encode `img` into the open file `f`."""
        if self.format == "png":
            img.save(f, format="PNG", compress_level=self.png_compress)
        elif self.format == "jpg":
            quality = self.quality or JPEG_QUALITY
            subsampling = 0 if quality >= 90 else 2  # 4:4:4 at high quality: no colour bleed
            rgb = img if img.mode in ("RGB", "L") else img.convert("RGB")
            rgb.save(f, format="JPEG", quality=quality, subsampling=subsampling)
        else:
            lossless = self.quality is None
            img.save(f, format="WEBP", lossless=lossless, quality=self.quality or 100)
