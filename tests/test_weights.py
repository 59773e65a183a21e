"""Weight files: the torch-free `.pth` reader, the Keras `.h5` reader, the converters' errors,
`.npz` round trips and `scripts/convert_weights.py`."""

from __future__ import annotations

import builtins
import importlib.util
import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import pytest
import torch
from flax import nnx
from torch import nn

from ndvr_jax.backbones import create_backbone, default_weights_path, keras_h5, torch_pickle
from ndvr_jax.backbones.convert import (
    ConvertedWeights,
    WeightConversionError,
    assign_params,
    convert_file,
    flat_params,
    from_efficientnet_lite0,
    from_torchvision_resnet50,
    from_torchvision_vgg16,
    load_npz,
    save_npz,
)
from ndvr_jax.backbones.resnet50 import ResNet50
from tests.test_backbones import write_keras_h5

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "convert_weights.py"

# ---------------------------------------------------------------- torch-free .pth reader


def sample_tensors() -> OrderedDict:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    return OrderedDict(
        f32=torch.randn(2, 3, 4, generator=g),
        f64=torch.randn(3, generator=g, dtype=torch.float64),
        f16=torch.randn(5, generator=g).half(),
        bf16=torch.randn(5, generator=g).bfloat16(),
        i64=torch.arange(-3, 4),
        i32=torch.arange(6, dtype=torch.int32).reshape(2, 3),
        i8=torch.tensor([-128, 0, 127], dtype=torch.int8),
        u8=torch.tensor([0, 255], dtype=torch.uint8),
        flags=torch.tensor([True, False]),
        transposed=base.t(),  # non-contiguous view ...
        sliced=base[1:, 2:],  # ... and an offset view of the same storage
        scalar=torch.tensor(3.5),
        empty=torch.zeros(0, 3),
    )


def to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_reader_matches_torch_load(tmp_path, legacy: bool) -> None:
    tensors = sample_tensors()
    checkpoint = {
        "state_dict": tensors,
        "epoch": 7,
        "best": np.float64(0.25),
        "names": ["a", ("b", 2)],
        "param": nn.Parameter(torch.ones(2, 2)),
    }
    path = tmp_path / "ckpt.pth"
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    loaded = torch_pickle.load(path)

    assert list(loaded["state_dict"]) == list(tensors)
    for key, tensor in tensors.items():
        got, want = loaded["state_dict"][key], to_numpy(tensor)
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want, err_msg=key)
    assert loaded["epoch"] == 7 and loaded["best"] == 0.25
    assert loaded["names"] == ["a", ("b", 2)]
    np.testing.assert_array_equal(loaded["param"], np.ones((2, 2), np.float32))


def test_real_package_file_is_legacy_and_matches_torch() -> None:
    path = default_weights_path("efficientnet_lite0")
    assert not zipfile.is_zipfile(path)
    ours = torch_pickle.load_state_dict(path)
    theirs = torch.load(path, weights_only=True)
    assert list(ours) == list(theirs)
    for key in ("_conv_stem.weight", "_blocks.15._bn2.running_var", "_fc.bias"):
        np.testing.assert_array_equal(ours[key], theirs[key].numpy())


def test_load_state_dict_unwraps_checkpoints(tmp_path) -> None:
    weights = {"module.conv.weight": torch.ones(2, 1), "module.conv.bias": torch.zeros(2)}
    torch.save({"model": weights, "optimizer": {"state": {}, "lr": 0.1}}, tmp_path / "c.pt")
    state = torch_pickle.load_state_dict(tmp_path / "c.pt")
    assert sorted(state) == ["conv.bias", "conv.weight"]
    torch.save({"epoch": 1}, tmp_path / "none.pt")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        torch_pickle.load_state_dict(tmp_path / "none.pt")


class Exploit:
    """Unpickling this would run a shell command that creates `marker`."""

    def __init__(self, marker: Path, via_builtins: bool = False) -> None:
        self.marker, self.via_builtins = marker, via_builtins

    def __reduce__(self):
        if self.via_builtins:
            return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("container", ["zip", "legacy", "plain_pickle"])
@pytest.mark.parametrize("via_builtins", [False, True], ids=["os.system", "builtins.exec"])
def test_refuses_malicious_pickle(tmp_path, container: str, via_builtins: bool) -> None:
    marker = tmp_path / "pwned"
    payload = {"weight": torch.ones(2), "x": Exploit(marker, via_builtins)}
    path = tmp_path / "evil.pth"
    if container == "plain_pickle":
        path.write_bytes(pickle.dumps(Exploit(marker, via_builtins)))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=container == "zip")
    name = "exec" if via_builtins else "system"
    with pytest.raises(torch_pickle.UnsafePickleError, match=f"refusing to load global .*{name}"):
        torch_pickle.load(path)
    assert not marker.exists()


def test_refuses_pickled_modules(tmp_path) -> None:
    torch.save(nn.Linear(2, 2), tmp_path / "model.pt")
    with pytest.raises(torch_pickle.UnsafePickleError, match="torch.nn.modules.linear"):
        torch_pickle.load(tmp_path / "model.pt")


def handmade_archive(path: Path, size: tuple, stride: tuple, offset: int = 0, state=None) -> None:
    """A torch zip archive written by hand: one 4-element float storage, one tensor view
    (`state`: what a pickle BUILD opcode would then set on the rebuilt tensor)."""
    storage = object()

    class Tensor:
        def __reduce__(self):
            args = (storage, offset, size, stride, False, OrderedDict())
            rebuild = torch._utils._rebuild_tensor_v2
            return (rebuild, args) if state is None else (rebuild, args, state)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 4) if obj is storage else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": Tensor()})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weights/data.pkl", buffer.getvalue())
        archive.writestr("weights/byteorder", "little")
        archive.writestr("weights/data/0", np.arange(4, dtype="<f4").tobytes())


def test_tensor_views_are_bounds_checked(tmp_path) -> None:
    handmade_archive(tmp_path / "ok.pth", size=(2, 2), stride=(1, 2))
    np.testing.assert_array_equal(torch_pickle.load(tmp_path / "ok.pth")["w"], [[0, 2], [1, 3]])
    handmade_archive(tmp_path / "far.pth", size=(10,), stride=(1,))
    with pytest.raises(pickle.UnpicklingError, match="reaches past its storage"):
        torch_pickle.load(tmp_path / "far.pth")
    handmade_archive(tmp_path / "neg.pth", size=(2,), stride=(-1,), offset=3)
    with pytest.raises(torch_pickle.UnsafePickleError, match="bad tensor geometry"):
        torch_pickle.load(tmp_path / "neg.pth")
    # A BUILD opcode must not be able to change the geometry after it was checked.
    handmade_archive(tmp_path / "build.pth", size=(2,), stride=(1,), state={"stride": (-9,)})
    with pytest.raises(torch_pickle.UnsafePickleError, match="modify an internal"):
        torch_pickle.load(tmp_path / "build.pth")


def test_not_a_checkpoint(tmp_path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"\x00not a pickle at all")
    with pytest.raises(pickle.UnpicklingError, match="not a PyTorch checkpoint"):
        torch_pickle.load(tmp_path / "junk.pth")


# ---------------------------------------------------------------- Keras .h5 reader


def test_keras_reader_layouts(tmp_path) -> None:
    kernel, bias = np.ones((3, 3, 3, 2), np.float32), np.arange(2, dtype=np.float32)
    layers = [("input_1", {}), ("conv", {"kernel": kernel, "bias": bias}), ("relu", {})]
    write_keras_h5(tmp_path / "w.h5", layers, full_model=False)
    write_keras_h5(tmp_path / "m.h5", layers, full_model=True, configs={"conv": {"strides": 2}})
    for name in ("w.h5", "m.h5"):
        weights = keras_h5.load_keras_h5(tmp_path / name)
        assert list(weights.layers) == ["conv"]
        np.testing.assert_array_equal(weights.layers["conv"]["kernel"], kernel)
        np.testing.assert_array_equal(weights.layers["conv"]["bias"], bias)
    assert keras_h5.load_keras_h5(tmp_path / "w.h5").configs == {}
    assert keras_h5.load_keras_h5(tmp_path / "m.h5").configs["conv"]["strides"] == 2


def test_keras_reader_chunked_attributes_and_errors(tmp_path) -> None:
    with h5py.File(tmp_path / "chunked.h5", "w") as f:
        f.attrs["layer_names0"] = np.array([b"a"])
        f.attrs["layer_names1"] = np.array([b"b"])
        for name in "ab":
            f.create_group(name).attrs["weight_names"] = np.array([f"{name}/bias:0".encode()])
            f[name].create_dataset(f"{name}/bias:0", data=np.zeros(1))
    assert list(keras_h5.load_keras_h5(tmp_path / "chunked.h5").layers) == ["a", "b"]
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(1))
    with pytest.raises(ValueError, match="not a Keras HDF5 weights file"):
        keras_h5.load_keras_h5(tmp_path / "other.h5")


# ---------------------------------------------------------------- converters


def torchvision_vgg16_state_dict() -> dict[str, np.ndarray]:
    state, cin, index = {}, 3, 0
    for n, cout in ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)):
        for _ in range(n):
            state[f"features.{index}.weight"] = np.zeros((cout, cin, 3, 3), np.float32)
            state[f"features.{index}.bias"] = np.zeros(cout, np.float32)
            cin, index = cout, index + 2
        index += 1
    state["classifier.0.weight"] = np.zeros((4, 8), np.float32)
    return state


def test_vgg16_converter_and_its_errors() -> None:
    state = torchvision_vgg16_state_dict()
    converted = from_torchvision_vgg16(state)
    assert converted.config == {"preprocessing": "torchvision"}
    assert len(converted.params) == 26
    assert converted.params["blocks/4/2/kernel"].shape == (3, 3, 512, 512)

    missing = dict(state)
    del missing["features.28.bias"]
    with pytest.raises(WeightConversionError, match="missing key 'features.28.bias'"):
        from_torchvision_vgg16(missing)
    extra = dict(state, **{"features.30.weight": np.zeros(1)})
    with pytest.raises(WeightConversionError, match=r"unexpected keys .*'features.30.weight'"):
        from_torchvision_vgg16(extra)
    wrong = dict(state, **{"features.0.weight": np.zeros((64, 4, 3, 3))})
    with pytest.raises(
        WeightConversionError, match=r"'features.0.weight' has shape \(64, 4, 3, 3\)"
    ):
        from_torchvision_vgg16(wrong)
    with pytest.raises(WeightConversionError, match="missing key 'conv1.weight' for resnet50"):
        from_torchvision_resnet50(state)


def test_bn_shape_mismatch_is_reported() -> None:
    state = torch_pickle.load_state_dict(default_weights_path("efficientnet_lite0"))
    state["_bn0.running_var"] = state["_bn0.running_var"][:16]
    with pytest.raises(WeightConversionError, match=r"var for '_conv_stem.weight' has shape"):
        from_efficientnet_lite0(state)


def test_convert_file_dispatch_errors(tmp_path) -> None:
    write_keras_h5(tmp_path / "x.h5", [("conv", {"bias": np.zeros(1)})], full_model=False)
    with pytest.raises(WeightConversionError, match="no converter from .h5 files"):
        convert_file("efficientnet_lite0", tmp_path / "x.h5")
    with pytest.raises(WeightConversionError, match="not a Keras ResNet50 file"):
        convert_file("resnet50", tmp_path / "x.h5")
    with pytest.raises(ValueError, match="unknown weights format '.onnx'"):
        convert_file("vgg16", tmp_path / "x.onnx")


def test_assign_params_checks_names_and_shapes() -> None:
    model = nnx.eval_shape(lambda: create_backbone("vgg16", weights=None))
    params = {k: np.zeros(v.get_value().shape, np.float32) for k, v in flat_params(model).items()}
    with pytest.raises(WeightConversionError, match=r"missing \['blocks/0/0/bias'\]"):
        assign_params(model, {k: v for k, v in params.items() if k != "blocks/0/0/bias"})
    with pytest.raises(WeightConversionError, match="'blocks/0/0/bias' has shape"):
        assign_params(model, dict(params, **{"blocks/0/0/bias": np.zeros(3)}))
    assign_params(model, params)
    assert float(abs(model.blocks[0][0].kernel[...]).max()) == 0.0


# ---------------------------------------------------------------- .npz and the CLI


def test_npz_round_trip_keeps_config(tmp_path) -> None:
    config = {"preprocessing": "caffe", "stride_in_1x1": True}
    abstract = nnx.eval_shape(lambda: ResNet50(**config, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(0)
    params = {
        k: rng.standard_normal(v.get_value().shape).astype(np.float32)
        for k, v in flat_params(abstract).items()
    }
    save_npz(tmp_path / "r50.npz", ConvertedWeights("resnet50", config, params))
    loaded = load_npz(tmp_path / "r50.npz")
    assert (loaded.backbone, loaded.config) == ("resnet50", config)
    model = create_backbone("resnet50", weights=tmp_path / "r50.npz")
    assert model.preprocessing == "caffe" and model.layers[1][0].conv1.strides == 2
    np.testing.assert_array_equal(
        model.layers[3][2].conv3.kernel[...], params["layers/3/2/conv3/kernel"]
    )
    with pytest.raises(WeightConversionError, match="holds resnet50 weights, not vgg16"):
        create_backbone("vgg16", weights=tmp_path / "r50.npz")


def load_script():
    spec = importlib.util.spec_from_file_location("convert_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_converts_default_lite0_weights(tmp_path, capsys) -> None:
    out = tmp_path / "lite0.npz"
    load_script().main(["--backbone", "efficientnet_lite0", "--output", str(out)])
    assert "efficientnet_lite0" in capsys.readouterr().out
    from_npz = flat_params(create_backbone("efficientnet_lite0", weights=out))
    default = flat_params(create_backbone("efficientnet_lite0"))
    assert from_npz.keys() == default.keys()
    for key, value in default.items():
        np.testing.assert_array_equal(from_npz[key][...], value[...])


def test_cli_errors(tmp_path, capsys) -> None:
    script = load_script()
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--backbone", "vgg16", "--output", str(tmp_path / "v.npz")])
    assert exit_info.value.code == 2
    assert "no bundled weights" in capsys.readouterr().err
    torch.save({"x": Exploit(tmp_path / "pwned")}, tmp_path / "evil.pth")
    args = ["--backbone", "vgg16", "--input", str(tmp_path / "evil.pth")]
    with pytest.raises(SystemExit) as exit_info:
        script.main([*args, "--output", str(tmp_path / "v.npz")])
    assert exit_info.value.code == 1
    assert "refusing to load global" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "v.npz").exists()
