"""Tests for ndvr_jax.backbones.audio_cnn: layer list, MAC size, parity with a PyTorch reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

from ndvr_jax.backbones import audio_cnn


def torch_block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    padding = 1 if kernel == 3 else 0
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class TorchKumar(nn.Module):
    """Plain PyTorch reference of the same network (written from the paper's layer list)."""

    widths = (16, 16, "p", 32, 32, "p", 64, 64, "p", 128, 128, "p", 256, 256, "p", 512, "p", 1024)

    def __init__(self, n_classes: int = 527):
        super().__init__()
        c_in = 1
        for i, width in enumerate(self.widths, start=1):
            if width == "p":
                self.add_module(f"layer{i}", nn.MaxPool2d(2))
            else:
                self.add_module(f"layer{i}", torch_block(c_in, width, 2 if width == 1024 else 3))
                c_in = width
        self.layer19 = nn.Sequential(nn.Conv2d(1024, n_classes, 1), nn.Sigmoid())

    def mac(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for i in range(1, 19):
            x = getattr(self, f"layer{i}")(x)
            if self.widths[i - 1] != "p":
                v = F.normalize(x, dim=1)
                parts.append(F.normalize(torch.amax(v, dim=(2, 3)), dim=1))
        return torch.cat(parts, dim=1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, 19):
            x = getattr(self, f"layer{i}")(x)
        return torch.amax(self.layer19(x), dim=(2, 3))


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    net = TorchKumar()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.fixture(scope="module")
def windows():
    return np.random.default_rng(0).normal(0, 20, size=(3, 174, 128)).astype(np.float32)


def abstract_model(num_classes=None) -> audio_cnn.AudioCNN:
    """Shapes only (random init of this net takes seconds); weights come from a state dict."""
    return nnx.eval_shape(lambda: audio_cnn.AudioCNN(num_classes, rngs=nnx.Rngs(0)))


def numpy_state_dict(net: nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + k: v.numpy() for k, v in net.state_dict().items()}


def test_layer_list_gives_2528_dims():
    assert audio_cnn.FEATURE_DIM == 2528
    expected = tuple(f"layer{i}" for i in (1, 2, 4, 5, 7, 8, 10, 11, 13, 14, 16, 18))
    assert expected == audio_cnn.MAC_LAYERS
    graphdef, state = nnx.split(abstract_model())
    windows = jax.ShapeDtypeStruct((2, 174, 128), jnp.float32)
    maps = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, windows)
    assert [m.shape[-1] for m in maps] == [16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 1024]
    assert maps[0].shape == (2, 174, 128, 16)
    assert maps[-1].shape == (2, 1, 1, 1024)


def test_mac_features_match_torch(reference, windows):
    model = abstract_model()
    # DataParallel prefix and the classifier the model lacks are both accepted.
    audio_cnn.assign_torch_state_dict(model, numpy_state_dict(reference, "module."))
    features = audio_cnn.segment_features(audio_cnn.mac_extractor(model), windows, batch_size=2)
    with torch.no_grad():
        expected = reference.mac(torch.from_numpy(windows)[:, None]).numpy()
    assert features.shape == (3, 2528)
    np.testing.assert_allclose(features, expected, atol=2e-5)
    # Every layer's part is unit length.
    bounds = np.cumsum([0, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 1024])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        np.testing.assert_allclose(np.linalg.norm(features[:, lo:hi], axis=1), 1.0, atol=1e-5)


def test_classifier_matches_torch(reference, windows):
    model = abstract_model(527)
    audio_cnn.assign_torch_state_dict(model, numpy_state_dict(reference))
    model = nnx.view(model, use_running_average=True)
    probs = nnx.jit(audio_cnn.AudioCNN.classify)(model, jnp.asarray(windows[:1, :, :, None]))
    with torch.no_grad():
        expected = reference.classify(torch.from_numpy(windows[:1])[:, None]).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_state_dict_errors(reference):
    state = numpy_state_dict(reference)
    model = abstract_model()
    with pytest.raises(KeyError, match="lacks"):
        audio_cnn.assign_torch_state_dict(
            model, {k: v for k, v in state.items() if not k.startswith("layer5.")}
        )
    with pytest.raises(KeyError, match="unexpected"):
        audio_cnn.assign_torch_state_dict(model, {**state, "layer3.0.weight": np.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        audio_cnn.assign_torch_state_dict(model, {**state, "layer2.0.bias": np.zeros(3)})
    with pytest.raises(KeyError, match="lacks"):
        audio_cnn.assign_torch_state_dict(
            abstract_model(527),
            {k: v for k, v in state.items() if not k.startswith("layer19.")},
        )


def test_segment_features_batches_and_empty_input():
    calls = []

    def extract(batch):
        calls.append(batch.shape)
        return jnp.sum(batch, axis=(1, 2))[:, None] * jnp.ones((1, 2528))

    windows = np.arange(5 * 174 * 128, dtype=np.float32).reshape(5, 174, 128)
    features = audio_cnn.segment_features(extract, windows, batch_size=4)
    assert calls == [(4, 174, 128), (4, 174, 128)]
    np.testing.assert_allclose(features[:, 0], windows.sum(axis=(1, 2)), rtol=1e-6)
    empty = np.zeros((0, 174, 128), np.float32)
    assert audio_cnn.segment_features(extract, empty).shape == (0, 2528)


def test_load_audio_cnn_from_torch_file(reference, windows, tmp_path):
    path = tmp_path / "mx-h64-1024.pkl"
    # The original file was saved from DataParallel: keys carry "module.".
    torch.save({"module." + k: v for k, v in reference.state_dict().items()}, path)
    model = audio_cnn.load_audio_cnn(path, with_classifier=True)
    features = audio_cnn.mac_extractor(model)(jnp.asarray(windows))
    with torch.no_grad():
        expected = reference.mac(torch.from_numpy(windows)[:, None]).numpy()
    np.testing.assert_allclose(features, expected, atol=2e-5)
