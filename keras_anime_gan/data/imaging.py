"""Pillow side of the converter: open any supported file and turn it into an RGB uint8 square.

Kept free of TensorFlow so converter worker processes start fast.
"""

from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
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
    image, digest = load_pil_image(
        source, resolution, transform=transform, resize_filter=resize_filter, min_size=min_size,
        max_pixels=max_pixels, with_hash=True,
    )
    return np.asarray(image, dtype=np.uint8), digest


def load_pil_image(
    source,
    resolution: int,
    *,
    transform: str = "center-crop",
    resize_filter: str = "lanczos",
    min_size: int | None = None,
    max_pixels: int | None = None,
    with_hash: bool = False,
) -> tuple[Image.Image, str | None]:
    """`load_image` returning the RGB Pillow image; the hash only when asked (it costs ~10%)."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageSkipped("empty file (0 bytes)")
        stream = io.BytesIO(source)
    else:
        stream = source
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit; a bomb is a bomb either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = limit
            try:
                image = Image.open(stream)
                image.seek(0)  # animated GIF/WebP: the first frame
                image.load()
            finally:
                Image.MAX_IMAGE_PIXELS = previous_limit
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageSkipped(f"too many pixels (decompression-bomb guard, limit {limit}): {error}") from None
    except Image.UnidentifiedImageError:
        raise ImageSkipped("not an image Pillow can identify (corrupt or not an image file)") from None
    except FileNotFoundError:
        raise ImageSkipped("file vanished while converting") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageSkipped(f"cannot decode: {error}") from None
    if image.size[0] == 0 or image.size[1] == 0:
        raise ImageSkipped("image has zero width or height")
    try:
        if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: show it as a viewer would
            image = ImageOps.exif_transpose(image)
        rgb = to_rgb(image)
    except (OSError, ValueError) as error:
        raise ImageSkipped(f"cannot convert mode {image.mode}: {error}") from None
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
