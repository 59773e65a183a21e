"""Picture-in-picture insets: found where the frames show one, nowhere else, cropped as frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from configs.extract import get_config
from ndvr_jax.backbones import create_backbone, mac
from ndvr_jax.features.visual import extract_visual
from ndvr_jax.io.video import square_image
from ndvr_jax.regional.insets import (
    InsetSearch,
    content_box,
    detect_inset,
    inset_boxes,
    inset_views,
)


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour picture (bilinear upsampling of a coarse random grid)."""
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))


def _panning(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """`n` frames of a camera panning across a larger texture."""
    big = _texture(rng, height + 4 * n, width + 6 * n)
    return np.stack([big[2 * i : 2 * i + height, 3 * i : 3 * i + width] for i in range(n)])


def _with_inset(host: np.ndarray, guest: np.ndarray, top: int, left: int) -> np.ndarray:
    out = host.copy()
    out[:, top : top + guest.shape[1], left : left + guest.shape[2]] = guest
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_inset_shown_over_moving_footage_is_found_where_it_is(seed) -> None:
    rng = np.random.default_rng(seed)
    height, width = 224, 224
    h, w = int(rng.integers(50, 90)), int(rng.integers(60, 100))
    top, left = int(rng.integers(10, height - h - 10)), int(rng.integers(10, width - w - 10))
    frames = _with_inset(_panning(rng, 8, height, width), _panning(rng, 8, h, w), top, left)
    box = detect_inset(frames)
    assert box is not None
    # within one grid cell (4 px at 224) of the truth on every side
    np.testing.assert_allclose(box, [top, left, h, w], atol=8)
    np.testing.assert_array_less(np.abs(box[:2] - [top, left]), 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moving_footage_without_an_inset_has_none(seed) -> None:
    frames = _panning(np.random.default_rng(seed), 8, 224, 224)
    assert detect_inset(frames) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_an_inset_flush_with_the_frame_edges_is_found(seed) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(50, 90)), int(rng.integers(60, 100))
    host, guest = _panning(rng, 8, 224, 224), _panning(rng, 8, h, w)
    for top, left in ((0, int(rng.integers(20, 100))), (0, 224 - w)):  # top edge; top-right corner
        frames = _with_inset(host, guest, top, left)
        inner = detect_inset(frames, InsetSearch(border_sides=0))  # missed, or cut short
        assert inner is None or inner[0] >= 4
        box = detect_inset(frames)  # two sides may lie on the border by default
        assert box is not None
        np.testing.assert_allclose(box, [top, left, h, w], atol=8)
        np.testing.assert_array_less(np.abs(box[:2] - [top, left]), 5)
    assert detect_inset(host) is None


def test_letterbox_bars_are_not_an_inset_and_boxes_are_in_frame_pixels() -> None:
    rng = np.random.default_rng(3)
    content = _panning(rng, 8, 160, 224)
    padded = np.zeros((8, 224, 224, 3), np.uint8)
    padded[:, 32:192] = content
    assert content_box(padded) == (32, 192, 0, 224)
    assert detect_inset(padded) is None
    guest = _panning(rng, 8, 48, 64)
    with_inset = padded.copy()
    with_inset[:, 100:148, 120:184] = guest
    np.testing.assert_allclose(detect_inset(with_inset), [100, 120, 48, 64], atol=8)


def test_boxes_per_window_and_views_crop_the_inset_as_a_frame() -> None:
    rng = np.random.default_rng(4)
    host = _panning(rng, 10, 128, 128)
    frames = np.concatenate([host[:5], _with_inset(host[5:], _panning(rng, 5, 40, 48), 30, 50)])
    boxes = inset_boxes(frames, window=5)
    assert (boxes[:5] == -1).all()  # the first window shows no inset
    assert (boxes[5:] == boxes[5]).all() and boxes[5, 0] >= 0
    views = inset_views(frames, boxes, mode="pad")
    assert views.shape == (10, 2, 128, 128, 3)
    np.testing.assert_array_equal(views[:, 0], frames)
    np.testing.assert_array_equal(views[:5, 1], frames[:5])  # no inset: the frame again
    top, left, h, w = boxes[7]
    crop = frames[7, top : top + h, left : left + w]
    np.testing.assert_array_equal(views[7, 1], square_image(crop, 128, "pad"))
    # a short last window reaches back to a full one
    assert (inset_boxes(frames[:7], window=5)[5:] == -1).all()


def _write_pip_video(path, frames: np.ndarray, fps: int = 4) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt, stream.bit_rate = "yuv420p", 4_000_000
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_extraction_appends_the_inset_region_and_records_its_box(tmp_path) -> None:
    rng = np.random.default_rng(5)
    frames = _with_inset(_panning(rng, 8, 128, 128), _panning(rng, 8, 40, 48), 64, 16)
    _write_pip_video(tmp_path / "pip.mp4", frames)
    video_list = tmp_path / "videos.txt"
    video_list.write_text(f"pip\t{tmp_path / 'pip.mp4'}\n")
    config = get_config()
    config.size, config.batch_size, config.num_workers = 128, 8, 1
    config.fps, config.insets, config.inset_window_s = 4.0, True, 2.0
    extract_visual(config, str(video_list), str(tmp_path / "features"))
    features = np.load(tmp_path / "features" / "pip.npy")
    meta = json.loads((tmp_path / "features" / "pip.json").read_text())
    assert features.shape == (8, 2, 2048)
    assert meta["insets"]["window_s"] == 2.0
    box = np.array(meta["inset_boxes"][0]) * 128
    np.testing.assert_allclose(box, [64, 16, 40, 48], atol=8)
    # region 1 is the MAC of the cropped inset scaled to the canvas, region 0 the whole frame
    from ndvr_jax.io.video import decode_video

    decoded = decode_video(tmp_path / "pip.mp4", fps=4.0, size=128, mode="pad").frames
    top, left, h, w = np.round(box).astype(int)
    crop = square_image(decoded[0, top : top + h, left : left + w], 128, "pad")
    backbone = create_backbone(config.backbone, weights=config.weights)
    expected = np.asarray(mac(backbone(np.stack([decoded[0], crop]).astype(np.float32))))
    np.testing.assert_allclose(features[0], expected, atol=2e-3)
    assert np.linalg.norm(features[0, 1] - features[0, 0]) > 0.1
