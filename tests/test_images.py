"""Odd but valid image kinds decode to the expected RGB array."""

import numpy as np
import pytest
from PIL import Image

from augcache.data.images import decode_file
from conftest import load_images


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 12), (0, 255, 255, 0)).save(path, quality=95)
    rgb = decode_file(path)
    assert rgb.shape == (12, 16, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb[6, 8], [255, 0, 0], atol=4)


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    values = np.full((5, 7), 257 * 100, dtype=np.uint16)
    values[2, 3] = 65535
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    rgb = decode_file(path)
    assert rgb.shape == (5, 7, 3)
    assert rgb[2, 3].tolist() == [255, 255, 255]
    assert rgb[0, 0].tolist() == [100, 100, 100]


def test_palette_png_with_transparency_is_composited_over_white(tmp_path):
    image = Image.new("P", (6, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 2), 1)
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    rgb = decode_file(path)
    assert rgb.shape == (4, 6, 3)
    assert rgb[0, 0].tolist() == [255, 255, 255]  # transparent
    assert rgb[2, 1].tolist() == [255, 0, 0]


def test_rgba_and_grayscale_become_rgb(tmp_path):
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[0, 0, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    rgb = decode_file(tmp_path / "rgba.png")
    assert rgb[0, 0].tolist() == [0, 200, 0]
    assert rgb[1, 1].tolist() == [255, 255, 255]
    Image.fromarray(np.full((2, 2), 77, np.uint8)).save(tmp_path / "grey.bmp")
    assert decode_file(tmp_path / "grey.bmp")[1, 1].tolist() == [77, 77, 77]


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:10, :10] = [255, 0, 0]  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    rgb = decode_file(path)
    assert rgb.shape == (40, 20, 3)
    np.testing.assert_allclose(rgb[5, 15], [255, 0, 0], atol=10)  # now top-right
    np.testing.assert_allclose(rgb[5, 5], [0, 0, 0], atol=10)


def test_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    rgb = decode_file(path)
    assert rgb.shape == (8, 8, 3)
    assert rgb[4, 4].tolist() == [255, 0, 0]


def test_webp_decodes(tmp_path):
    pixels = np.zeros((6, 9, 3), np.uint8)
    pixels[3, 4] = [10, 200, 30]
    path = tmp_path / "img.webp"
    Image.fromarray(pixels).save(path, lossless=True)
    rgb = decode_file(path)
    assert rgb.shape == (6, 9, 3)
    assert rgb[3, 4].tolist() == [10, 200, 30]


@pytest.mark.parametrize("policy, expected_corner", [("stretch", 255.0), ("crop", 255.0), ("pad", 0.0)])
def test_resize_policies(tmp_path, policy, expected_corner):
    pixels = np.full((20, 40, 3), 255, np.uint8)
    pixels[:, :10] = 60  # a dark band on the left quarter
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    image = load_images([tmp_path / "wide.png"], (10, 10), policy).numpy()[0]
    assert image.shape == (10, 10, 3)
    if policy == "stretch":
        assert image[5, 0, 0] == pytest.approx(60, abs=1)  # the band is squeezed, still at the left
    if policy == "crop":
        assert image[5, 0, 0] == pytest.approx(255, abs=1)  # the centre square excludes the band
    if policy == "pad":
        assert image[0, 5, 0] == expected_corner  # black bars above and below
        assert image[5, 0, 0] == pytest.approx(60, abs=1)
