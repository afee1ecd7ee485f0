"""Pillow side of the converter: open any supported file and turn it into an RGB uint8 square.

Kept free of TensorFlow so converter worker processes start fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings

import numpy as np
import simplejpeg
from PIL import Image, ImageOps

SUPPORTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif")
TRANSFORMS = ("center-crop", "pad", "stretch")
RESIZE_FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
}
PAD_COLOR = (255, 255, 255)  # the faces sit on white or near-white backgrounds


class ImageSkipped(Exception):
    """A source file that cannot become a training image; the message is the reason."""


def has_supported_extension(name: str) -> bool:
    return name.lower().endswith(SUPPORTED_EXTENSIONS)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Alpha is composited on white, 16/32-bit data is rescaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            scale = 257.0  # 65535 -> 255
        elif mode == "F":
            scale = 1.0 / 255.0 if array.max(initial=0.0) <= 1.0 else 1.0
        else:  # "I": 32-bit ints; PNG 16-bit greyscale opens as this in recent Pillow
            scale = 257.0 if array.max(initial=0) > 255 else 1.0
        grey = np.clip(np.rint(array / scale), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, PAD_COLOR + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversions are right for these.
    return image.convert("RGB")


def square(image: Image.Image, transform: str) -> Image.Image:
    width, height = image.size
    if width == height or transform == "stretch":
        return image
    if transform == "center-crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return image.crop((left, top, left + side, top + side))
    if transform == "pad":
        side = max(width, height)
        canvas = Image.new("RGB", (side, side), PAD_COLOR)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        return canvas
    raise ValueError(f"unknown transform {transform!r}; choose from {', '.join(TRANSFORMS)}")


@contextlib.contextmanager
def pixel_limit(max_pixels: int | None = None):
    """Pillow's decompression-bomb limit for the duration (None: Pillow's own), with the band where
    Pillow only warns (1x-2x the limit) made an error too: a bomb is a bomb either way.

    Set once per run rather than per image: both are process-wide state, which a thread must not
    flip back and forth."""
    previous = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        if max_pixels is not None:
            Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield Image.MAX_IMAGE_PIXELS
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def load_image(
    source,
    resolution: int,
    *,
    transform: str = "center-crop",
    resize_filter: str = "lanczos",
    min_size: int | None = None,
    max_pixels: int | None = None,
) -> tuple[np.ndarray, str]:
    """Decode one file (path or bytes) into a (resolution, resolution, 3) uint8 array.

    Returns the array and a content hash of the decoded source pixels (for exact-duplicate
    detection). Raises ImageSkipped with a human-readable reason for anything unusable.
    """
    with pixel_limit(max_pixels):
        image, digest = load_pil_image(
            source, resolution, transform=transform, resize_filter=resize_filter, min_size=min_size, with_hash=True
        )
    return np.asarray(image, dtype=np.uint8), digest


def _has_app1(jpeg: bytes) -> bool:
    """Whether a JPEG's header holds an APP1 segment (EXIF or XMP, where an orientation may hide),
    or cannot be walked; either way Pillow's full path decides."""
    position = 2
    while position + 4 <= len(jpeg):
        if jpeg[position] != 0xFF:
            return True
        marker = jpeg[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xDA:  # start of scan: the header is over
            return False
        if marker == 0xE1:
            return True
        position += 2 + int.from_bytes(jpeg[position + 2 : position + 4], "big")
    return True


def decode_plain_jpeg(data: bytes) -> Image.Image | None:
    """The common case, a YCbCr or greyscale JPEG with no APP1 (so no orientation to apply), decoded
    with simplejpeg: the libjpeg-turbo Pillow uses, with the same settings (accurate integer IDCT,
    fancy upsampling), so the same pixels, in one C call instead of Pillow's Python header parsing
    (a fifth of the time a small image takes; see docs/benchmarks.md). Anything else, or any doubt, gives None and the
    caller decodes with Pillow, which then also reports what is wrong with the file."""
    if data[:3] != b"\xff\xd8\xff" or _has_app1(data):
        return None
    try:
        width, height, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        limit = Image.MAX_IMAGE_PIXELS
        if colorspace not in ("YCbCr", "Gray") or not width or not height or (limit and width * height > limit):
            return None
        # strict (the default): libjpeg's warnings, such as a truncated file, are errors here.
        return Image.fromarray(simplejpeg.decode_jpeg(data, colorspace="RGB"), "RGB")
    except ValueError:
        return None


@contextlib.contextmanager
def _decode_errors():
    """Pillow's ways of failing on a file -> ImageSkipped with a reason a person can act on."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageSkipped(
            f"too many pixels (decompression-bomb guard, limit {Image.MAX_IMAGE_PIXELS}): {error}"
        ) from None
    except Image.UnidentifiedImageError:
        raise ImageSkipped("not an image Pillow can identify (corrupt or not an image file)") from None
    except FileNotFoundError:
        raise ImageSkipped("file vanished while converting") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageSkipped(f"cannot decode: {error}") from None


def probe_image(path: str) -> tuple[int, int]:
    """(width, height) of the image file at `path` once it decoded; ImageSkipped says why it does
    not. Every byte is decoded (a truncated file fails), JPEGs at 1/8 scale, so checking a sample of
    a folder of photos takes milliseconds a file."""
    with _decode_errors():
        if os.path.getsize(path) == 0:
            raise ImageSkipped("empty file (0 bytes)")
        with Image.open(path) as image:
            size = image.size
            image.draft("RGB", (1, 1))  # JPEG only: decode at the smallest scale libjpeg offers
            image.load()
    if size[0] == 0 or size[1] == 0:
        raise ImageSkipped("image has zero width or height")
    return size


def load_pil_image(
    source,
    resolution: int,
    *,
    transform: str = "center-crop",
    resize_filter: str = "lanczos",
    min_size: int | None = None,
    with_hash: bool = False,
) -> tuple[Image.Image, str | None]:
    """`load_image` returning the RGB Pillow image; the hash only when asked (it costs ~10%).
    The caller sets the pixel limit for its whole run (`pixel_limit`)."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageSkipped("empty file (0 bytes)")
        rgb = decode_plain_jpeg(bytes(source))
        if rgb is not None:
            return _finish(rgb, resolution, transform, resize_filter, min_size, with_hash)
        stream = io.BytesIO(source)
    else:
        stream = source
    with _decode_errors():
        image = Image.open(stream)
        image.seek(0)  # animated GIF/WebP: the first frame
        image.load()
    if image.size[0] == 0 or image.size[1] == 0:
        raise ImageSkipped("image has zero width or height")
    try:
        if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: show it as a viewer would
            image = ImageOps.exif_transpose(image)
        rgb = to_rgb(image)
    except (OSError, ValueError) as error:
        raise ImageSkipped(f"cannot convert mode {image.mode}: {error}") from None
    return _finish(rgb, resolution, transform, resize_filter, min_size, with_hash)


def _finish(rgb, resolution, transform, resize_filter, min_size, with_hash):
    """Decoded RGB image -> (resolution x resolution image, content hash or None)."""
    digest = None
    if with_hash:
        hasher = hashlib.blake2b(rgb.tobytes(), digest_size=16)
        hasher.update(repr(rgb.size).encode())
        digest = hasher.hexdigest()
    if min_size is not None and min(rgb.size) < min_size:
        raise ImageSkipped(
            f"too small ({rgb.size[0]}x{rgb.size[1]}, shorter side < --min-size {min_size}); "
            "not upscaled"
        )
    squared = square(rgb, transform)
    if squared.size != (resolution, resolution):
        squared = squared.resize((resolution, resolution), RESIZE_FILTERS[resize_filter])
    return squared, digest


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
