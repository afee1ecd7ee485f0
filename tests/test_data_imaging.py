import io

import numpy as np
import pytest
from PIL import Image

from keras_anime_gan.data import imaging


def jpeg(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def pillow_rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def face(shared_faces_dir):
    # An odd size: partial 8x8 blocks and 16x16 chroma blocks at both edges.
    return Image.open(shared_faces_dir / "0.jpg").convert("RGB").resize((101, 77))


PLAIN = {
    "4:2:0": {"subsampling": 2},
    "4:2:2": {"subsampling": 1},
    "4:4:4": {"subsampling": 0},
    "progressive": {"progressive": True},
    "optimized": {"optimize": True, "quality": 30},
    "restart markers": {"restart_marker_blocks": 2},
}


@pytest.mark.parametrize("options", PLAIN.values(), ids=PLAIN.keys())
def test_fast_jpeg_path_gives_pillows_pixels(face, options):
    data = jpeg(face, **options)
    fast = imaging.decode_plain_jpeg(data)
    assert fast is not None and fast.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(fast), pillow_rgb(data))


def test_fast_jpeg_path_for_greyscale_and_the_shared_faces(face, shared_faces_dir):
    grey = jpeg(face.convert("L"))
    np.testing.assert_array_equal(np.asarray(imaging.decode_plain_jpeg(grey)), pillow_rgb(grey))
    for index in range(40):  # what the converter tests feed it go through this path
        data = (shared_faces_dir / f"{index}.jpg").read_bytes()
        np.testing.assert_array_equal(np.asarray(imaging.decode_plain_jpeg(data)), pillow_rgb(data))


def test_fast_jpeg_path_leaves_everything_else_to_pillow(face):
    rotated = Image.Exif()
    rotated[0x0112] = 6  # EXIF orientation: rotate 90 degrees on display
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="3"/></x:xmpmeta>'
    plain = jpeg(face)
    others = {
        "cmyk": jpeg(face.convert("CMYK")),
        "exif": jpeg(face, exif=rotated.tobytes()),
        "xmp": jpeg(face, xmp=xmp),
        "truncated": plain[: len(plain) // 2],
        "png": (lambda buffer: (face.save(buffer, format="PNG"), buffer.getvalue())[1])(io.BytesIO()),
        "garbage": b"\xff\xd8\xff" + bytes(100),
    }
    for name, data in others.items():
        assert imaging.decode_plain_jpeg(data) is None, name
    # Pillow then applies the orientation and reports the damage.
    upright, _ = imaging.load_pil_image(others["exif"], 64, resize_filter="box")
    assert upright.size == (64, 64)
    np.testing.assert_array_equal(
        np.asarray(upright),
        np.asarray(Image.open(io.BytesIO(others["exif"])).transpose(Image.Transpose.ROTATE_270).convert("RGB")
                   .crop((0, 12, 77, 89)).resize((64, 64), Image.Resampling.BOX)),
    )
    with pytest.raises(imaging.ImageSkipped, match="cannot decode"):
        imaging.load_pil_image(others["truncated"], 64)


def test_pixel_limit_is_set_for_a_run_and_restored(face):
    data = jpeg(face)  # 101 x 77 = 7,777 pixels
    before = Image.MAX_IMAGE_PIXELS
    with imaging.pixel_limit(5000):
        with pytest.raises(imaging.ImageSkipped, match="decompression-bomb guard, limit 5000"):
            imaging.load_pil_image(data, 64)
        with pytest.raises(imaging.ImageSkipped, match="decompression-bomb guard"):
            imaging.load_pil_image(jpeg(face.resize((80, 80))), 64)  # 6,400: Pillow's warning band
    assert Image.MAX_IMAGE_PIXELS == before
    assert imaging.load_pil_image(data, 64)[0].size == (64, 64)
