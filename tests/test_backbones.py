"""Backbones: registry, shapes, dtype, and parity with torch reference networks.

The references are plain `torch.nn` modules written here with torchvision's (and the
`efficientnet_lite_pytorch` package's) state-dict key names. Their state dicts are saved with
`torch.save` (or written in Keras's HDF5 layout) and loaded through the torch-free readers.
"""

from __future__ import annotations

import json
import logging
import math

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

from ndvr_jax.backbones import (
    BACKBONES,
    create_backbone,
    default_weights_path,
    feature_dim,
    mac,
    torch_pickle,
)
from ndvr_jax.backbones.convert import flat_params

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)


def images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def torchvision_input(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(((x / 255 - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2))


def caffe_input(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((x[..., ::-1] - CAFFE_BGR_MEAN).transpose(0, 3, 1, 2).copy())


def randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial inference statistics so that BN folding is actually exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean = torch.randn(n, generator=g) * 0.1
            m.running_var = torch.rand(n, generator=g) + 0.5


def assert_maps_close(ours: list[jax.Array], ref: list[torch.Tensor], rtol: float = 2e-4) -> None:
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        b = b.detach().numpy().transpose(0, 2, 3, 1)
        assert a.shape == b.shape, (i, a.shape, b.shape)
        scale = float(np.abs(b).max())
        np.testing.assert_allclose(
            np.asarray(a), b, rtol=rtol, atol=rtol * scale, err_msg=f"map {i}"
        )
    np.testing.assert_allclose(
        np.asarray(mac(ours)),
        np.asarray(mac([jnp.asarray(b.detach().numpy().transpose(0, 2, 3, 1)) for b in ref])),
        atol=1e-5,
    )


# ---------------------------------------------------------------- torch reference networks


class TorchVGG16(nn.Module):
    """torchvision `vgg16` keys (`features.<i>`, `classifier.<i>`); the classifier is shrunk
    (it is ignored by the converter) to keep the test file small."""

    def __init__(self) -> None:
        super().__init__()
        layers, cin = [], 3
        for n, cout in ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)):
            for _ in range(n):
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
                cin = cout
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs, convs = [], 0
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                convs += 1
                if convs > 2:  # conv2_1 onwards
                    outputs.append(x)
        return outputs


class TorchBottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int, keras: bool, eps: float) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if keras else (1, stride)
        self.conv1 = nn.Conv2d(cin, width, 1, stride=s1, bias=keras)
        self.bn1 = nn.BatchNorm2d(width, eps=eps)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=1, bias=keras)
        self.bn2 = nn.BatchNorm2d(width, eps=eps)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=keras)
        self.bn3 = nn.BatchNorm2d(width * 4, eps=eps)
        self.downsample = None
        if stride != 1 or cin != width * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, width * 4, 1, stride=stride, bias=keras),
                nn.BatchNorm2d(width * 4, eps=eps),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet50(nn.Module):
    """torchvision `resnet50` keys. `keras=True`: Keras's variant (stride in the first 1x1 conv,
    conv biases), with the same key names so one writer can produce the Keras file."""

    def __init__(self, keras: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=keras)
        self.bn1 = nn.BatchNorm2d(64, eps=eps)
        cin = 64
        for i, (n, width, stride) in enumerate(((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2))):
            blocks = []
            for b in range(n):
                blocks.append(TorchBottleneck(cin, width, stride if b == 0 else 1, keras, eps))
                cin = width * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(2048, 1000)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        randomize_bn(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        outputs = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            outputs.append(x)
        return outputs


class SameConv2d(nn.Conv2d):
    """TensorFlow 'SAME' padding (extra row/column at the bottom/right), as the package uses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (s, _) = self.kernel_size, self.stride
        ph = max((math.ceil(x.shape[-2] / s) - 1) * s + kh - x.shape[-2], 0)
        pw = max((math.ceil(x.shape[-1] / s) - 1) * s + kw - x.shape[-1], 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


class TorchMBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = SameConv2d(mid, mid, k, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)
        self.expand, self.skip = expand != 1, stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.skip else y


class TorchEfficientNetLite0(nn.Module):
    """The `efficientnet_lite_pytorch` EfficientNet-Lite0 (keys `_conv_stem`, `_blocks.<j>`...)."""

    STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80))
    STAGES += ((3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks, self.stage_ends, cin = [], [], 32
        for repeats, k, stride, expand, cout in self.STAGES:
            for r in range(repeats):
                blocks.append(TorchMBConv(k, stride if r == 0 else 1, expand, cin, cout))
                cin = cout
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        outputs = []
        for j, block in enumerate(self._blocks):
            x = block(x)
            if j in self.stage_ends[1:]:
                outputs.append(x)
        outputs.append(F.relu6(self._bn1(self._conv_head(x))))
        return outputs


# ---------------------------------------------------------------- Keras HDF5 writer


def write_keras_h5(path, layers, *, full_model: bool, configs=None) -> None:
    """Writes `[(layer_name, {weight: array})]` exactly as Keras 2's legacy HDF5 saving does."""
    with h5py.File(path, "w") as f:
        group = f.create_group("model_weights") if full_model else f
        if full_model:
            cfg = [
                {
                    "class_name": "Layer",
                    "name": n,
                    "config": {"name": n, **(configs or {}).get(n, {})},
                }
                for n, _ in layers
            ]
            f.attrs["model_config"] = json.dumps(
                {"class_name": "Functional", "config": {"name": "model", "layers": cfg}}
            ).encode()
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        group.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        for name, weights in layers:
            layer = group.create_group(name)
            names = [f"{name}/{w}:0".encode() for w in weights]
            layer.attrs["weight_names"] = np.array(names) if names else np.asarray([])
            for w, a in weights.items():
                layer.create_dataset(f"{name}/{w}:0", data=a)


def hwio(conv: nn.Conv2d) -> np.ndarray:
    return conv.weight.detach().numpy().transpose(2, 3, 1, 0)


def keras_conv(conv: nn.Conv2d) -> dict[str, np.ndarray]:
    return {"kernel": hwio(conv), "bias": conv.bias.detach().numpy()}


def keras_bn(bn: nn.BatchNorm2d) -> dict[str, np.ndarray]:
    return {
        "gamma": bn.weight.detach().numpy(),
        "beta": bn.bias.detach().numpy(),
        "moving_mean": bn.running_mean.numpy(),
        "moving_variance": bn.running_var.numpy(),
    }


def keras_resnet_layers(ref: TorchResNet50, new_names: bool):
    """Layer list of a Keras ResNet50 (tf.keras names, or the old keras-applications ones)."""

    def names(stage: int, block: int, i: int) -> tuple[str, str]:
        if new_names:
            base = f"conv{stage}_block{block + 1}_{i}"
            return f"{base}_conv", f"{base}_bn"
        base = f"{stage}{'abcdef'[block]}_" + ("branch1" if i == 0 else f"branch2{'abc'[i - 1]}")
        return f"res{base}", f"bn{base}"

    stem = ("conv1_conv", "conv1_bn") if new_names else ("conv1", "bn_conv1")
    layers = [("input_1", {}), ("conv1_pad", {})]
    layers += [(stem[0], keras_conv(ref.conv1)), (stem[1], keras_bn(ref.bn1)), ("pool1", {})]
    for s in range(4):
        for b, block in enumerate(getattr(ref, f"layer{s + 1}")):
            for i in (1, 2, 3):
                conv_name, bn_name = names(s + 2, b, i)
                layers.append((conv_name, keras_conv(getattr(block, f"conv{i}"))))
                layers.append((bn_name, keras_bn(getattr(block, f"bn{i}"))))
            if block.downsample is not None:
                conv_name, bn_name = names(s + 2, b, 0)
                layers.append((conv_name, keras_conv(block.downsample[0])))
                layers.append((bn_name, keras_bn(block.downsample[1])))
    top = "predictions" if new_names else "fc1000"
    fc = {"kernel": ref.fc.weight.detach().numpy().T, "bias": ref.fc.bias.detach().numpy()}
    return [*layers, ("avg_pool", {}), (top, fc)]


# ---------------------------------------------------------------- registry, shapes, dtype


def test_registry_and_feature_dims(tmp_path) -> None:
    assert set(BACKBONES) == {"vgg16", "resnet50", "efficientnet_lite0"}
    assert feature_dim("vgg16") == 4096
    assert feature_dim("resnet50") == 3840
    assert feature_dim("efficientnet_lite0") == 2048
    with pytest.raises(ValueError, match="unknown backbone"):
        feature_dim("alexnet")
    (tmp_path / "weights.onnx").write_bytes(b"onnx")  # a file, in a format no converter reads
    with pytest.raises(ValueError, match="unknown weights format"):
        create_backbone("vgg16", weights=tmp_path / "weights.onnx")


@pytest.mark.parametrize(
    "name, size, strides",
    [
        ("vgg16", 32, [2] * 2 + [4] * 3 + [8] * 3 + [16] * 3),
        ("resnet50", 32, [4, 8, 16, 32]),
        ("efficientnet_lite0", 64, [4, 8, 16, 16, 32, 32, 32]),
    ],
)
def test_output_shapes(name: str, size: int, strides: list[int]) -> None:
    # Abstract model and forward pass: checks shapes without paying for random init on CPU.
    model = nnx.eval_shape(lambda: create_backbone(name, weights=None))
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    maps = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x)
    assert [m.shape[1:3] for m in maps] == [(size // s, size // s) for s in strides]
    assert sum(m.shape[-1] for m in maps) == feature_dim(name)
    assert all(m.shape[0] == 2 and m.dtype == jnp.float32 for m in maps)


def test_default_weights_without_bundle_is_random_and_warns(caplog) -> None:
    assert default_weights_path("vgg16") is None
    with caplog.at_level(logging.WARNING):
        model = nnx.eval_shape(lambda: create_backbone("vgg16"))
    assert "RANDOM" in caplog.text
    assert model.preprocessing == "torchvision"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_random_init_forward(name: str) -> None:
    model = create_backbone(name, weights=None, rngs=nnx.Rngs(1))
    descriptor = mac(model(jnp.asarray(images((1, 64, 64, 3)))))
    assert descriptor.shape == (1, feature_dim(name))
    assert np.all(np.isfinite(np.asarray(descriptor)))


@pytest.fixture(scope="module")
def lite0() -> nnx.Module:
    return create_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def odd_images() -> np.ndarray:
    return images((2, 67, 45, 3), seed=4)  # odd sizes exercise TF's asymmetric 'SAME' padding


def test_jit_bfloat16_compute_float32_params(lite0, odd_images) -> None:
    model = create_backbone("efficientnet_lite0", dtype=jnp.bfloat16)
    assert {p.get_value().dtype for p in flat_params(model).values()} == {jnp.dtype(jnp.float32)}
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, x):
        maps = nnx.merge(graphdef, state)(x)
        return [m.dtype == jnp.bfloat16 for m in maps], mac(maps)

    x = jnp.asarray(odd_images)
    is_bf16, a = forward(state, x)
    assert all(is_bf16)
    a, b = np.asarray(a), np.asarray(mac(lite0(x)))
    cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert np.all(cosine > 0.99)


# ---------------------------------------------------------------- parity with torch


def test_vgg16_torchvision_parity(tmp_path) -> None:
    torch.manual_seed(0)
    ref = TorchVGG16().eval()
    torch.save(ref.state_dict(), tmp_path / "vgg16.pth")
    model = create_backbone("vgg16", weights=tmp_path / "vgg16.pth")
    x = images((2, 32, 32, 3))
    with torch.no_grad():
        expected = ref(torchvision_input(x))
    assert_maps_close(model(jnp.asarray(x)), expected)


def test_vgg16_keras_h5_parity(tmp_path) -> None:
    torch.manual_seed(1)
    ref = TorchVGG16().eval()
    convs = [m for m in ref.features if isinstance(m, nn.Conv2d)]
    layers, i = [("input_1", {})], 0
    for b, n in enumerate((2, 2, 3, 3, 3)):
        for c in range(n):
            layers.append((f"block{b + 1}_conv{c + 1}", keras_conv(convs[i])))
            i += 1
        layers.append((f"block{b + 1}_pool", {}))
    dense = {"kernel": np.zeros((8, 8), np.float32), "bias": np.zeros(8, np.float32)}
    layers += [("flatten", {}), ("fc1", dense), ("fc2", dense), ("predictions", dense)]
    write_keras_h5(tmp_path / "vgg16.h5", layers, full_model=False)

    model = create_backbone("vgg16", weights=tmp_path / "vgg16.h5")
    assert model.preprocessing == "caffe"
    x = images((1, 32, 32, 3), seed=1)
    with torch.no_grad():
        expected = ref(caffe_input(x))
    assert_maps_close(model(jnp.asarray(x)), expected)


@pytest.fixture(scope="module")
def resnet_input() -> np.ndarray:
    return images((1, 64, 64, 3), seed=2)


def test_resnet50_torchvision_parity(tmp_path, resnet_input) -> None:
    torch.manual_seed(2)
    ref = TorchResNet50().eval()
    torch.save(ref.state_dict(), tmp_path / "resnet50.pth")
    model = create_backbone("resnet50", weights=tmp_path / "resnet50.pth")
    with torch.no_grad():
        expected = ref(torchvision_input(resnet_input))
    assert_maps_close(model(jnp.asarray(resnet_input)), expected)


@pytest.mark.parametrize("new_names", [True, False], ids=["tf_keras", "old_keras"])
def test_resnet50_keras_h5_parity(tmp_path, resnet_input, new_names: bool) -> None:
    torch.manual_seed(3)
    # tf.keras ResNet50 uses BN eps 1.001e-5 (read from model_config here); the old
    # keras-applications one used Keras's default 1e-3 (weights-only file: inferred from names).
    eps = 1.001e-5 if new_names else 1e-3
    ref = TorchResNet50(keras=True, eps=eps).eval()
    layers = keras_resnet_layers(ref, new_names)
    configs = {name: {"epsilon": eps} for name, w in layers if "gamma" in w}
    write_keras_h5(tmp_path / "r50.h5", layers, full_model=new_names, configs=configs)

    model = create_backbone("resnet50", weights=tmp_path / "r50.h5")
    assert (model.preprocessing, model.layers[1][0].conv1.strides) == ("caffe", 2)
    with torch.no_grad():
        expected = ref(caffe_input(resnet_input))
    assert_maps_close(model(jnp.asarray(resnet_input)), expected)


@pytest.fixture(scope="module")
def lite0_reference() -> TorchEfficientNetLite0:
    ref = TorchEfficientNetLite0().eval()
    state = torch.load(default_weights_path("efficientnet_lite0"), weights_only=True)
    ref.load_state_dict(state)
    return ref


def test_efficientnet_lite0_parity_on_package_weights(lite0, lite0_reference, odd_images) -> None:
    x = odd_images
    with torch.no_grad():
        expected = lite0_reference(torch.from_numpy(((x - 127) / 128).transpose(0, 3, 1, 2)))
    assert_maps_close(lite0(jnp.asarray(x)), expected)


def test_efficientnet_lite0_weights_are_imagenet(lite0) -> None:
    from skimage import data
    from skimage.transform import resize

    fc = torch_pickle.load_state_dict(default_weights_path("efficientnet_lite0"))
    batch = np.stack(
        [
            resize(img, (224, 224), preserve_range=True, anti_aliasing=True)
            for img in (data.chelsea(), data.coffee())
        ]
    ).astype(np.float32)
    head = np.asarray(lite0(jnp.asarray(batch))[-1]).mean(axis=(1, 2))
    logits = head @ fc["_fc.weight"].T + fc["_fc.bias"]
    cat, cup = logits.argmax(-1)
    assert 281 <= cat <= 285  # tabby / tiger cat / Persian / Siamese / Egyptian cat
    assert cup in (967, 968)  # espresso / cup
