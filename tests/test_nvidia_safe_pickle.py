"""The safe reader of NVIDIA StyleGAN2-ADA network pickles: exact arrays, no code run, clear refusals.

No torch here. Reference values (digests of every state_dict, key order, weight_gain) come from NVIDIA's own
loader (legacy.load_network_pkl) run outside the repository on the shared fixtures. Variants that NVIDIA's
published files use (protocol 2/3 GLOBAL opcodes, numpy 1 names, older torch's missing hook keys, float16
storages, channels-last strides) are written here by re-serialising the records with stand-in objects whose
globals are given NVIDIA's names.
"""

import collections
import hashlib
import io
import json
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_anime_gan.errors import UserError
from keras_anime_gan.nvidia import safe_pickle
from conftest import NVIDIA_FIXTURES
from keras_anime_gan.nvidia.safe_pickle import (
    SOURCE_ADA_AUGMENT,
    SOURCE_ADA_NETWORKS,
    ModuleRecord,
    NvidiaPickleError,
    RefusedPickleError,
    read_snapshot,
)

FIXTURES = NVIDIA_FIXTURES

# sha256 over (key, dtype, shape, bytes) of every entry of NVIDIA's own state_dict(), in order
NVIDIA_DIGESTS = {
    "tiny32": {
        "G": ("61676f3fec6e9b4d48589e045ffc1b9387e51add3153ad94bcff5983f1e9c823", 75),
        "D": ("6ecbe9bda5acfa5e2230bf1c597abeba7c752d1f4835e43af8f7089a1c1ddcb3", 37),
        "G_ema": ("c2d31bc98b6ba618289b9a8b105473f29ff38a579a5c6dc01502bd8cd13367c3", 75),
        "augment_pipe": ("8d86544a5ee877502e3b383f2b7f8310e60b7422b8e64e60c7d86ddb52963366", 3),
    },
    "small64": {
        "G": ("014ac645fb950044c9484f6861414f335ce41aeb732bdbed1f05435a70dc1127", 106),
        "D": ("88df070b34b99b249a4a8309452a2920d15539a351fb34393bda669d28dd7379", 46),
        "G_ema": ("40d80ba10940e1fabc3843d9e6982d4d976271e6f072ef577972b0a726ba2ef7", 106),
        "augment_pipe": ("8d86544a5ee877502e3b383f2b7f8310e60b7422b8e64e60c7d86ddb52963366", 3),
    },
}
CLASS_NAMES = {"G": "Generator", "D": "Discriminator", "G_ema": "Generator", "augment_pipe": "AugmentPipe"}


def digest(state_dict):
    h = hashlib.sha256()
    for key, array in state_dict.items():
        h.update(f"{key}|{array.dtype.str}|{tuple(array.shape)}|".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.skip(f"NVIDIA StyleGAN2-ADA fixtures not found at {FIXTURES} (shared/nvidia-stylegan2-ada next to "
                    f"the repository; or set NVIDIA_STYLEGAN2_ADA_DIR)")
    return FIXTURES


@pytest.fixture(scope="module")
def snapshots(fixtures_dir):
    return {name: read_snapshot(fixtures_dir / f"{name}.pkl") for name in ("tiny32", "small64")}


def jsonish(value):
    return json.loads(json.dumps(value))


def walk(record, prefix=""):
    yield prefix, record
    for name, child in record.children.items():
        yield from walk(child, f"{prefix}.{name}" if prefix else name)


# --- the fixtures ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny32", "small64"])
def test_fixture_reads_exactly_what_nvidia_code_gives(name, snapshots, fixtures_dir):
    snapshot = snapshots[name]
    info = json.loads((fixtures_dir / f"{name}.json").read_text())
    assert list(snapshot.networks) == ["G", "D", "G_ema", "augment_pipe"]
    assert snapshot.other_keys == []
    assert snapshot.training_set_kwargs == info["training_set_kwargs"]
    for net, record in snapshot.networks.items():
        assert isinstance(record, ModuleRecord) and record.class_name == CLASS_NAMES[net]
        assert record.source == (SOURCE_ADA_AUGMENT if net == "augment_pipe" else SOURCE_ADA_NETWORKS)
        assert record.source_exact
        state_dict = record.state_dict()
        expected_digest, expected_len = NVIDIA_DIGESTS[name][net]
        assert len(state_dict) == expected_len
        assert digest(state_dict) == expected_digest, f"{name} {net}: arrays, dtypes, shapes or key order differ"
        counts = info["param_counts"][net]
        assert record.num_parameters() == counts["parameters"]
        tensors = [a for _, m in walk(record) for a in m.parameters.values()]
        buffers = [a for _, m in walk(record) for a in [*m.buffers.values(), *m.non_persistent_buffers.values()]]
        assert len(tensors) == counts["parameter_tensors"]
        assert (sum(a.size for a in buffers), len(buffers)) == (counts["buffers"], counts["buffer_tensors"])
        assert record.attributes["training"] is False  # snapshots are pickled after .eval()
        if net != "G_ema":
            assert jsonish(record.init_kwargs) == info["config"][f"{net}_init_kwargs_as_pickled"]
            assert record.init_args == ()
    G, G_ema = snapshot.networks["G"], snapshot.networks["G_ema"]
    assert G_ema.init_kwargs == G.init_kwargs
    ema = G_ema.state_dict()
    assert all(np.array_equal(a, ema[k]) == ("resample_filter" in k or k.endswith(("noise_const", "w_avg")))
               for k, a in G.state_dict().items())  # weights differ; buffers are copied from G, as in training
    # NVIDIA's G_ema.mapping.w_avg, as its own run recorded it in the npz
    with np.load(fixtures_dir / f"{name}.npz") as outputs:
        assert np.array_equal(G_ema.state_dict()["mapping.w_avg"], outputs["w_avg"])


def test_fixture_layout_details(snapshots):
    G = snapshots["tiny32"].networks["G"]
    keys = list(G.state_dict())
    assert keys[:3] == ["synthesis.b4.const", "synthesis.b4.resample_filter", "synthesis.b4.conv1.weight"]
    assert keys[-2:] == ["mapping.fc1.weight", "mapping.fc1.bias"]
    assert keys.index("mapping.w_avg") + 1 == keys.index("mapping.fc0.weight")  # a module's buffers before its children
    fc0 = G.children["mapping"].children["fc0"]
    assert type(fc0.attributes["weight_gain"]) is float and fc0.attributes["weight_gain"] == 0.00125
    assert fc0.attributes["bias_gain"] == 0.01 and fc0.attributes["activation"] == "lrelu"
    conv0 = G.children["synthesis"].children["b8"].children["conv0"]
    assert type(conv0.attributes["act_gain"]) is float and conv0.attributes["act_gain"] == 1.4142135623730951
    assert conv0.attributes["up"] == 2 and conv0.attributes["conv_clamp"] is None
    assert conv0.parameters["weight"].shape == (64, 64, 3, 3) and conv0.parameters["weight"].dtype == np.float32
    assert conv0.parameters["noise_strength"].shape == ()
    assert G.init_kwargs["mapping_kwargs"] == {"num_layers": 2} and type(G.init_kwargs["mapping_kwargs"]) is dict
    D = snapshots["tiny32"].networks["D"]
    assert D.children["b4"].children["mbstd"].attributes["group_size"] == 4
    small = snapshots["small64"].networks["G"].children["synthesis"].children["b64"].children["conv1"]
    assert small.attributes["conv_clamp"] == 256


# --- stand-ins that pickle under NVIDIA's global names (no torch, no NVIDIA code) ---------------------------------


def _stand_in(name):
    def function(*args):
        raise AssertionError(f"{name} is a stand-in and is never called")

    function.__qualname__ = function.__name__ = name.rsplit(".", 1)[1]
    return function


RECONSTRUCT = _stand_in("torch_utils.persistence._reconstruct_persistent_obj")
REBUILD_TENSOR = _stand_in("torch._utils._rebuild_tensor_v2")
REBUILD_PARAMETER = _stand_in("torch._utils._rebuild_parameter")
LOAD_FROM_BYTES = _stand_in("torch.storage._load_from_bytes")


class FakeEasyDict(dict):
    pass


NVIDIA_NAMES = {
    id(RECONSTRUCT): ("torch_utils.persistence", "_reconstruct_persistent_obj"),
    id(REBUILD_TENSOR): ("torch._utils", "_rebuild_tensor_v2"),
    id(REBUILD_PARAMETER): ("torch._utils", "_rebuild_parameter"),
    id(LOAD_FROM_BYTES): ("torch.storage", "_load_from_bytes"),
    id(FakeEasyDict): ("dnnlib.util", "EasyDict"),
}


class NamingPickler(pickle._Pickler):
    """The pure-Python pickler, writing the given (module, name) for chosen objects: GLOBAL before protocol 4."""

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[types.FunctionType] = lambda self, obj: self.save_global(obj)
    dispatch[types.BuiltinFunctionType] = lambda self, obj: self.save_global(obj)

    def __init__(self, file, protocol, names):
        super().__init__(file, protocol)
        self.names = names

    def save_global(self, obj, name=None):
        mapped = self.names.get(id(obj))
        if mapped is None:
            return super().save_global(obj, name)
        module, qualname = mapped
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
        self.memoize(obj)


def dumps(obj, protocol=4, names=None, numpy1=False):
    mapping = {**NVIDIA_NAMES, **(names or {})}
    if numpy1:  # numpy 1.x wrote its scalars' global under numpy.core
        mapping[id(np._core.multiarray.scalar)] = ("numpy.core.multiarray", "scalar")
    out = io.BytesIO()
    NamingPickler(out, protocol, mapping).dump(obj)
    return out.getvalue()


def _binunicode(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def storage_blob(flat, storage_type=None, storage_global=None, numel=None, data_numel=None, key="0"):
    """A legacy torch.save stream of one storage, written by hand as torch writes it."""
    flat = np.ascontiguousarray(flat).reshape(-1)
    storage_type = storage_type or {"f4": "FloatStorage", "f2": "HalfStorage", "f8": "DoubleStorage"}[flat.dtype.str[1:]]
    numel = flat.size if numel is None else numel
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    stream = pickle.dumps(TORCH_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2) + pickle.dumps(sys_info, protocol=2)
    glob = storage_global or f"torch\n{storage_type}\n"
    stream += (b"\x80\x02(" + _binunicode("storage") + b"c" + glob.encode() + _binunicode(key) + _binunicode("cpu")
               + b"J" + struct.pack("<i", numel) + b"Nt" + b"Q.")
    stream += pickle.dumps([key], protocol=2)
    stream += struct.pack("<q", flat.size if data_numel is None else data_numel)
    stream += flat.astype(flat.dtype.newbyteorder("<")).tobytes()
    return stream


def c_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.insert(0, step)
        step *= n
    return tuple(strides)


class Storage:
    def __init__(self, blob):
        self.blob = blob

    def __reduce__(self):
        return LOAD_FROM_BYTES, (self.blob,)


class Tensor:
    """A tensor as torch pickles it; `memory` is the storage's contents (default: the array, C order)."""

    def __init__(self, array, parameter=False, memory=None, offset=0, size=None, stride=None, blob=None):
        self.array, self.parameter, self.offset = array, parameter, offset
        self.memory = np.ascontiguousarray(array).reshape(-1) if memory is None else memory
        self.size = tuple(array.shape) if size is None else size
        self.stride = c_strides(self.size) if stride is None else stride
        self.blob = blob

    def __reduce__(self):
        blob = self.blob if self.blob is not None else storage_blob(self.memory)
        tensor = (REBUILD_TENSOR, (Storage(blob), self.offset, self.size, self.stride, False, collections.OrderedDict()))
        if not self.parameter:
            return tensor
        return REBUILD_PARAMETER, (_Reduced(tensor), False, collections.OrderedDict())


class _Reduced:
    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


class Persistent:
    def __init__(self, class_name, state, source):
        self.meta = dict(type="class", version=6, module_src=source, class_name=class_name, state=state)

    def __reduce__(self):
        return RECONSTRUCT, (self.meta,)


HOOK_KEYS = ["_backward_pre_hooks", "_backward_hooks", "_is_full_backward_hook", "_forward_hooks",
             "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
             "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
             "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"]
OLD_TORCH_HOOK_KEYS = ["_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks",
                       "_load_state_dict_pre_hooks"]  # torch 1.7, as NVIDIA's own files


def easy(value):
    if isinstance(value, dict):
        return FakeEasyDict({k: easy(v) for k, v in value.items()})
    return value


def stand_in(record, sources, hook_keys=HOOK_KEYS, half=(), prefix="", non_persistent_key=True):
    """A Persistent stand-in that pickles as NVIDIA's module did (floats as numpy float64, EasyDict kwargs)."""
    def tensor(name, array, parameter):
        if prefix + name in half:
            array = array.astype(np.float16)
        return Tensor(array, parameter)

    state = {"training": record.attributes.get("training", False)}
    state["_parameters"] = collections.OrderedDict((k, tensor(k, a, True)) for k, a in record.parameters.items())
    buffers = {**record.buffers, **record.non_persistent_buffers}
    state["_buffers"] = collections.OrderedDict((k, tensor(k, a, False)) for k, a in buffers.items())
    if non_persistent_key:  # torch < 1.6 had no non-persistent buffers
        state["_non_persistent_buffers_set"] = set(record.non_persistent_buffers)
    for key in hook_keys:
        state[key] = None if key == "_is_full_backward_hook" else collections.OrderedDict()
    state["_modules"] = collections.OrderedDict(
        (k, stand_in(c, sources, hook_keys, half, f"{prefix}{k}.", non_persistent_key))
        for k, c in record.children.items())
    for key, value in record.attributes.items():
        if key != "training":
            state[key] = np.float64(value) if type(value) is float else value
    state["_init_args"] = record.init_args
    state["_init_kwargs"] = {k: easy(v) for k, v in record.init_kwargs.items()}
    return Persistent(record.class_name, state, sources[record.source_sha256])


@pytest.fixture(scope="module")
def tiny_sources(fixtures_dir):
    """The class sources embedded in tiny32.pkl, by sha256 (read as text, never run)."""
    data = (fixtures_dir / "tiny32.pkl").read_bytes()
    sources, start = {}, 0
    while (start := data.find(b"# Copyright (c) 2021, NVIDIA CORPORATION", start + 1)) > 0:
        assert data[start - 5:start - 4] == b"X"  # BINUNICODE with a 4-byte length
        text = data[start:start + struct.unpack("<I", data[start - 4:start])[0]].decode()
        sources[hashlib.sha256(text.encode()).hexdigest()] = text
    assert len(sources) == 2
    return sources


def snapshot_stand_in(snapshot, sources, **options):
    data = {"training_set_kwargs": dict(snapshot.training_set_kwargs)}
    for name, record in snapshot.networks.items():
        data[name] = stand_in(record, sources, **options)
    return data


def write(tmp_path, data, name="net.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_same_records(a, b):
    assert (a.class_name, a.source, a.source_sha256, a.init_args) == (b.class_name, b.source, b.source_sha256, b.init_args)
    assert a.init_kwargs == b.init_kwargs and a.attributes == b.attributes
    assert list(a.state_dict()) == list(b.state_dict())
    for key, array in a.state_dict().items():
        other = b.state_dict()[key]
        assert array.dtype == other.dtype and array.shape == other.shape and array.tobytes() == other.tobytes(), key
    assert list(a.children) == list(b.children)


# --- variants NVIDIA's published files use -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol, numpy1, hooks, non_persistent_key", [
    (2, True, OLD_TORCH_HOOK_KEYS, True),  # GLOBAL opcodes, __builtin__.set, _codecs.encode for bytes
    (3, True, OLD_TORCH_HOOK_KEYS, True),  # Python <= 3.7 with numpy 1 and torch 1.7: NVIDIA's published files
    (4, False, [], False),  # no hook keys, no _non_persistent_buffers_set
    (5, False, HOOK_KEYS, True),
])
def test_variants_of_the_format_read_to_the_same_records(protocol, numpy1, hooks, non_persistent_key, snapshots,
                                                         tiny_sources, tmp_path):
    original = snapshots["tiny32"]
    standin = snapshot_stand_in(original, tiny_sources, hook_keys=hooks, non_persistent_key=non_persistent_key)
    data = dumps(standin, protocol=protocol, numpy1=numpy1)
    if protocol < 4:
        assert b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n" in data
        assert b"cnumpy.core.multiarray\nscalar\n" in data
        assert (b"c__builtin__\nset\n" if protocol == 2 else b"cbuiltins\nset\n") in data
        assert (b"c_codecs\nencode\n" in data) == (protocol == 2)  # protocol 2 has no bytes opcode
        assert "STACK_GLOBAL" not in {op.name for op, _, _ in pickletools.genops(data)}
    copy = read_snapshot(write(tmp_path, data))
    assert list(copy.networks) == list(original.networks)
    assert copy.training_set_kwargs == original.training_set_kwargs
    for name, record in original.networks.items():
        assert_same_records(copy.networks[name], record)
        assert copy.networks[name].source_exact


def test_half_storages_stay_float16_and_exact(snapshots, tiny_sources, tmp_path):
    G = snapshots["tiny32"].networks["G"]
    half = {"synthesis.b32.conv1.weight", "synthesis.b32.conv1.bias", "mapping.w_avg"}
    data = {"G": stand_in(G, tiny_sources, half=half), "D": stand_in(G, tiny_sources), "G_ema": stand_in(G, tiny_sources)}
    copy = read_snapshot(write(tmp_path, dumps(data))).networks["G"].state_dict()
    for key, array in G.state_dict().items():
        expected = array.astype(np.float16) if key in half else array
        assert copy[key].dtype == expected.dtype and copy[key].tobytes() == expected.tobytes(), key
    assert b"torch\nHalfStorage\n" in dumps(data)


def small_network(tensors, source="class Generator:\n    pass\n", attributes=None, non_persistent=()):
    state = {"training": False, "_parameters": collections.OrderedDict(), "_buffers": collections.OrderedDict(),
             "_non_persistent_buffers_set": set(non_persistent), "_modules": collections.OrderedDict()}
    for name, tensor in tensors.items():
        state["_parameters" if tensor.parameter else "_buffers"][name] = tensor
    state.update(attributes or {})
    state["_init_args"], state["_init_kwargs"] = (), {"z_dim": 4, "mapping_kwargs": FakeEasyDict(num_layers=2)}
    return Persistent("Generator", state, source)


def small_snapshot(tensors, **options):
    net = small_network(tensors, **options)
    return {"training_set_kwargs": {"resolution": 4}, "G": net, "D": net, "G_ema": net, "augment_pipe": None,
            "progress": {"cur_nimg": 5}}


def test_strided_offset_and_zero_dimensional_tensors(tmp_path):
    weight = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) - 20.5
    channels_last = np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(-1)  # as torch.channels_last stores it
    memory = np.arange(40, dtype=np.float32)
    tensors = {
        "weight": Tensor(weight, True, memory=channels_last, stride=(27, 1, 9, 3)),
        "bias": Tensor(memory[10:14], True, memory=memory, offset=10),
        "noise_strength": Tensor(np.float32(0.25).reshape(()), True),
        "transposed": Tensor(memory[:12].reshape(3, 4).T, False, memory=memory, size=(4, 3), stride=(1, 4)),
        "w_avg": Tensor(np.linspace(-1, 1, 5), False),  # a float64 storage
        "cache": Tensor(np.ones(3, np.float32), False),
        "from_gpu": Tensor(np.full(2, 7, np.float32), False,  # pickled straight from a GPU by old torch
                           blob=storage_blob(np.full(2, 7, np.float32), storage_global="torch.cuda\nFloatStorage\n")),
    }
    snapshot = read_snapshot(write(tmp_path, dumps(small_snapshot(tensors, non_persistent=["cache"]))))
    G = snapshot.networks["G"]
    assert list(G.state_dict()) == ["weight", "bias", "noise_strength", "transposed", "w_avg", "from_gpu"]
    assert np.array_equal(G.buffers["from_gpu"], [7, 7])
    assert np.array_equal(G.parameters["weight"], weight) and G.parameters["weight"].flags.c_contiguous
    assert np.array_equal(G.parameters["bias"], memory[10:14])
    assert G.parameters["noise_strength"].shape == () and G.parameters["noise_strength"] == 0.25
    assert np.array_equal(G.buffers["transposed"], memory[:12].reshape(3, 4).T)
    assert G.buffers["w_avg"].dtype == np.float64 and np.array_equal(G.buffers["w_avg"], np.linspace(-1, 1, 5))
    assert list(G.non_persistent_buffers) == ["cache"]
    assert G.num_parameters() == 54 + 4 + 1
    assert G.init_kwargs == {"z_dim": 4, "mapping_kwargs": {"num_layers": 2}}
    assert type(G.init_kwargs["mapping_kwargs"]) is dict
    assert G.source == "unknown" and not G.source_exact
    assert snapshot.networks["G"] is snapshot.networks["D"]  # one object pickled three times stays one record
    assert list(snapshot.networks) == ["G", "D", "G_ema"]  # augment_pipe=None: trained without augmentation
    assert snapshot.other_keys == ["progress"]
    assert not G.parameters["bias"].flags.writeable  # read-only views of the file's data


# --- which NVIDIA file a class came from ---------------------------------------------------------------------


def test_sources_are_told_apart_by_hash_or_by_their_class_lines(tiny_sources, tmp_path):
    networks = next(text for text in tiny_sources.values() if "class MappingNetwork" in text)
    edited = networks.replace("# Copyright", "# Edited copy. Copyright", 1)
    stylegan3_copy = networks.replace("skip_w_avg_update", "update_emas")
    stylegan3 = "".join(f"class {name}(torch.nn.Module):\n    pass\n" for name in
                        ["MappingNetwork", "SynthesisInput", "SynthesisLayer", "SynthesisNetwork", "Generator"])
    expected = [(networks, SOURCE_ADA_NETWORKS, True), (edited, SOURCE_ADA_NETWORKS, False),
                (stylegan3_copy, safe_pickle.SOURCE_SG3_NETWORKS_STYLEGAN2, False),
                (stylegan3, safe_pickle.SOURCE_SG3_NETWORKS_STYLEGAN3, False), ("x = 1\n", "unknown", False)]
    for source, label, exact in expected:
        G = read_snapshot(write(tmp_path, dumps(small_snapshot({}, source=source)))).networks["G"]
        assert (G.source, G.source_exact, G.source_sha256) == (label, exact, hashlib.sha256(source.encode()).hexdigest())


# --- safety --------------------------------------------------------------------------------------------------------


def call_pickle(module, name, args, protocol=4, inside=None):
    """A pickle whose loading calls module.name(*args), alone or as an attribute of a network in a snapshot."""
    target = _stand_in(f"{module}.{name}")

    class Call:
        def __reduce__(self):
            return target, args

    obj = Call() if inside is None else inside(Call())
    return dumps(obj, protocol=protocol, names={id(target): (module, name)})


def harmful_calls(marker):
    code = f"open({str(marker)!r}, 'w').close()"
    return [
        (os.system.__module__, "system", (f"touch {marker}",)),
        ("os", "system", (f"touch {marker}",)),
        ("builtins", "open", (str(marker), "w")),
        ("io", "open", (str(marker), "w")),
        ("builtins", "exec", (code,)),
        ("builtins", "eval", (code,)),
        ("subprocess", "Popen", (["touch", str(marker)],)),
        ("subprocess", "check_call", (["touch", str(marker)],)),
    ]


def expected_refusal(module, name):
    alias = f" (os.{name})" if module in ("posix", "nt") else ""
    return f"refusing NVIDIA pickle: it references {module}.{name}{alias}, which a network file never needs"


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("where", ["top", "attribute"])
def test_code_execution_is_refused_before_anything_runs(protocol, where, tmp_path):
    marker = tmp_path / "marker"
    inside = None
    if where == "attribute":  # deep in an otherwise valid snapshot, after allowed globals were used
        def inside(call):
            return small_snapshot({"b": Tensor(np.zeros(2, np.float32), True)}, attributes={"activation": call})
    for module, name, args in harmful_calls(marker):
        path = write(tmp_path, call_pickle(module, name, args, protocol, inside))
        with pytest.raises(RefusedPickleError) as caught:
            read_snapshot(path)
        assert str(caught.value) == expected_refusal(module, name)
        assert isinstance(caught.value, UserError)
        assert not marker.exists()


def test_plainly_named_network_classes_are_refused(tmp_path):
    path = write(tmp_path, call_pickle("training.networks", "Generator", ()))
    with pytest.raises(RefusedPickleError, match=r"^refusing NVIDIA pickle: it references the class "
                                                 r"training\.networks\.Generator by name, which would run"):
        read_snapshot(path)


def test_embedded_class_source_is_never_run(fixtures_dir, tmp_path, monkeypatch):
    data = (fixtures_dir / "tiny32.pkl").read_bytes()
    first_line = b"# Copyright (c) 2021, NVIDIA CORPORATION.  All rights reserved.\n"
    payload = b"import os; open(os.environ['NV_MARKER'], 'w').close()"
    assert data.count(first_line) == 2 and len(payload) < len(first_line)
    # same length, so every count and frame stays valid: NVIDIA's loader would exec this line
    evil = data.replace(first_line, payload.ljust(len(first_line) - 1) + b"\n")
    marker = tmp_path / "marker"
    monkeypatch.setenv("NV_MARKER", str(marker))
    snapshot = read_snapshot(write(tmp_path, evil))
    assert not marker.exists()
    G = snapshot.networks["G"]
    assert G.source == SOURCE_ADA_NETWORKS and not G.source_exact  # recognised by its class lines, flagged edited
    assert G.source_sha256 != read_snapshot(fixtures_dir / "tiny32.pkl").networks["G"].source_sha256


def test_a_storage_stream_that_references_another_global_is_refused(fixtures_dir, tmp_path):
    data = (fixtures_dir / "tiny32.pkl").read_bytes()
    old = b"ctorch\nFloatStorage\n"
    new = f"c{os.system.__module__}\nsystem\n".encode()
    new += b"N0" * ((len(old) - len(new)) // 2)  # push None, pop it: keeps the length
    assert len(new) == len(old)
    with pytest.raises(RefusedPickleError) as caught:
        read_snapshot(write(tmp_path, data.replace(old, new, 1)))
    assert str(caught.value) == (f"refusing NVIDIA pickle: a tensor's storage references {os.system.__module__}.system "
                                 f"(os.system), which a network file never needs")
    blob = storage_blob(np.zeros(3, np.float32), storage_global="builtins\neval\n")
    with pytest.raises(RefusedPickleError, match="a tensor's storage references builtins.eval"):
        read_snapshot(write(tmp_path, dumps(small_snapshot({"w": Tensor(np.zeros(3, np.float32), True, blob=blob)}))))


@pytest.mark.parametrize("offset, size, stride, message", [
    (8, (4, 4), (4, 1), "reaches element 23 of a storage of 16 elements: it reaches beyond its storage"),
    (0, (2, 9), (9, 1), "reaches element 17 of a storage of 16 elements"),
    (0, (4, 4), (1, 5), "reaches element 18 of a storage of 16 elements"),
    (16, (), (), "reaches element 16 of a storage of 16 elements"),
    (0, (2**62, 2**62), (1, 1), "reaches beyond its storage"),
    (0, (1000, 1000), (0, 0), "overlapping tensors are not supported"),
    (-1, (2,), (1,), "negative offset, size or stride"),
    (0, (4,), (-1,), "negative offset, size or stride"),
    (0, (4, 4), (4,), "size (4, 4), stride (4,)"),
    (0, (4.0,), (1,), "size (4.0,)"),
])
def test_tensors_reaching_beyond_their_storage_are_refused(offset, size, stride, message, tmp_path):
    memory = np.arange(16, dtype=np.float32)
    tensor = Tensor(memory, True, memory=memory, offset=offset, size=size, stride=stride)
    path = write(tmp_path, dumps(small_snapshot({"weight": tensor})))
    with pytest.raises(NvidiaPickleError) as caught:
        read_snapshot(path)
    assert str(caught.value).startswith(f"{path} is not a readable NVIDIA network pickle: a tensor")
    assert message in str(caught.value)
    assert not isinstance(caught.value, RefusedPickleError)


@pytest.mark.parametrize("blob_options, message", [
    (dict(numel=17), "holds 72 bytes of data where its header says 76"),
    (dict(data_numel=15), "says 15 elements in one place and 16 in another"),
    (dict(storage_type="LongStorage"), "has type torch.LongStorage; NVIDIA's networks hold only float tensors"),
])
def test_storage_streams_are_checked(blob_options, message, tmp_path):
    blob = storage_blob(np.zeros(16, np.float32), **blob_options)
    path = write(tmp_path, dumps(small_snapshot({"w": Tensor(np.zeros(16, np.float32), True, blob=blob)})))
    with pytest.raises(NvidiaPickleError, match=message):
        read_snapshot(path)
    good = storage_blob(np.zeros(16, np.float32))
    for cut in (len(good) - 1, 230, 3):  # in the data, in a header pickle, in the magic number
        path = write(tmp_path, dumps(small_snapshot({"w": Tensor(np.zeros(16, np.float32), True, blob=good[:cut])})))
        with pytest.raises(NvidiaPickleError, match="a tensor's storage"):
            read_snapshot(path)


def test_pickle_build_cannot_touch_the_readers_objects(tmp_path):
    # OrderedDict() then BUILD with attributes, as a hostile file could
    data = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R}\x8c\x01x\x8c\x01ysb."
    with pytest.raises(NvidiaPickleError, match="tries to set attributes on a dict"):
        read_snapshot(write(tmp_path, data))
    data = (b"\x80\x04\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02f8\x89\x88\x87R"  # numpy.dtype('f8', False, True)
            b"(K\x03\x8c\x01<\x8c\x03badNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.")  # BUILD, a subarray 'bad'
    with pytest.raises(NvidiaPickleError, match="unexpected numpy dtype state"):
        read_snapshot(write(tmp_path, data))


# --- files that are not NVIDIA snapshots ---------------------------------------------------------------------


def test_truncated_fixture(fixtures_dir, tmp_path):
    data = (fixtures_dir / "tiny32.pkl").read_bytes()
    for cut in (1, 2, 11, 1000, 40000, len(data) // 2, len(data) - 1):
        path = write(tmp_path, data[:cut])
        with pytest.raises(NvidiaPickleError) as caught:
            read_snapshot(path)
        assert str(caught.value) == (f"{path} is truncated: its pickle stops before its end ({cut:,} bytes); "
                                     f"a copy or download of it may have stopped early"), cut


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path = write(tmp_path, b"\x13" + noise)
    with pytest.raises(NvidiaPickleError, match=r"it is not a Python pickle \(it starts with b'\\x13"):
        read_snapshot(path)
    for seed in range(20):  # noise behind a valid pickle header: a clear error, never a crash
        body = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        with pytest.raises(NvidiaPickleError):
            read_snapshot(write(tmp_path, b"\x80\x04" + body))


def test_empty_missing_folder_and_image(tmp_path):
    empty = write(tmp_path, b"", "empty.pkl")
    with pytest.raises(NvidiaPickleError, match=r"^.*empty\.pkl is empty \(0 bytes\), not an NVIDIA network pickle"):
        read_snapshot(empty)
    with pytest.raises(NvidiaPickleError, match=r"missing\.pkl does not exist$"):
        read_snapshot(tmp_path / "missing.pkl")
    with pytest.raises(NvidiaPickleError, match=r"is a folder, not a network pickle"):
        read_snapshot(tmp_path)
    png = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40), "face.png")
    with pytest.raises(NvidiaPickleError) as caught:
        read_snapshot(png)
    assert str(caught.value) == f"{png} is not an NVIDIA network pickle: it is a PNG image. {safe_pickle.SUPPORTED}"


class TF1Network:
    def __getstate__(self):
        return {"version": 4, "name": "G", "static_kwargs": {}, "build_module_src": "raise SystemExit",
                "build_func_name": "G_main", "variables": [("G/4x4/Const/const", 0)]}


def test_tensorflow1_pickle_is_named_and_converting_it_explained(tmp_path):
    data = dumps((TF1Network(), TF1Network(), TF1Network()), protocol=3,
                 names={id(TF1Network): ("dnnlib.tflib.network", "Network")})
    assert b"cdnnlib.tflib.network\nNetwork\n" in data
    path = write(tmp_path, data)
    with pytest.raises(NvidiaPickleError) as caught:
        read_snapshot(path)
    assert not isinstance(caught.value, RefusedPickleError)
    assert str(caught.value).startswith(f"{path} is in NVIDIA's TensorFlow 1 StyleGAN/StyleGAN2 format")
    assert "convert it with legacy.py from NVIDIA's stylegan2-ada-pytorch repository" in str(caught.value)


def test_torch_save_files_are_named(tmp_path):
    zipped = tmp_path / "model.pt"
    with zipfile.ZipFile(zipped, "w") as archive:  # torch.save's default layout
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("model/version", b"3\n")
        archive.writestr("model/data/0", bytes(16))
    with pytest.raises(NvidiaPickleError) as caught:
        read_snapshot(zipped)
    assert str(caught.value) == (f"{zipped} is not an NVIDIA network pickle: it is a torch.save file (a ZIP archive "
                                 f"with model/data.pkl), such as a state dict or a model saved with torch.save. "
                                 f"{safe_pickle.SUPPORTED}")
    # torch's legacy format: magic number, protocol, sys info, then the object and the storages
    legacy = (pickle.dumps(TORCH_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
              + pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
              + pickle.dumps({"weight": 1.0}, protocol=2) + pickle.dumps([], protocol=2))
    path = write(tmp_path, legacy, "state.pth")
    with pytest.raises(NvidiaPickleError, match=r"state\.pth is not an NVIDIA network pickle: it is a torch\.save "
                                                r"file in torch's legacy format"):
        read_snapshot(path)


def test_pickles_of_something_else(tmp_path):
    path = write(tmp_path, pickle.dumps({"state_dict": {}, "epoch": 3, "G": None}))
    with pytest.raises(NvidiaPickleError) as caught:
        read_snapshot(path)
    assert str(caught.value) == (f"{path} holds a dict with keys 'state_dict', 'epoch', 'G' but no D or G_ema; "
                                 f"NVIDIA's network-snapshot-*.pkl files hold G, D and G_ema (and augment_pipe, "
                                 f"training_set_kwargs)")
    path = write(tmp_path, pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(NvidiaPickleError, match=r"holds a list, not the dict of networks"):
        read_snapshot(path)
    path = write(tmp_path, pickle.dumps({"G": 1, "D": 2, "G_ema": 3}))
    with pytest.raises(NvidiaPickleError, match=r": G is an int, not a network saved by NVIDIA's code"):
        read_snapshot(path)
    path = write(tmp_path, pickle.dumps([1]) + b"more")
    with pytest.raises(NvidiaPickleError, match="more data follows its pickle"):
        read_snapshot(path)
    # a dict key holding a tensor: unhashable once it is an array
    net = small_network({}, attributes={"table": {(Tensor(np.zeros(1, np.float32)),): 1}})
    path = write(tmp_path, dumps({"G": net, "D": net, "G_ema": net}))
    with pytest.raises(NvidiaPickleError, match="not a readable NVIDIA network pickle: TypeError: unhashable"):
        read_snapshot(path)


def test_reading_imports_neither_torch_nor_nvidia_code(fixtures_dir):
    # a naive pickle.load would import torch_utils, dnnlib and torch (and fail here, where they are absent)
    code = ("import sys; from keras_anime_gan.nvidia.safe_pickle import read_snapshot; "
            f"snapshot = read_snapshot({str(fixtures_dir / 'tiny32.pkl')!r}); assert snapshot.networks['G'].state_dict(); "
            "assert not any(m.split('.')[0] in ('torch', 'dnnlib', 'torch_utils', 'training', 'tensorflow') "
            "for m in sys.modules), sorted(sys.modules)")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                   timeout=60)


# --- bounds (issue 33) -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny32", "small64"])
def test_real_snapshots_stay_far_inside_every_bound(name, fixtures_dir, monkeypatch):
    """The bounds are set for NVIDIA's largest published snapshots (1024 px: about four times the opcodes,
    containers, memo entries and values of small64, the same nesting, tensors up to 16.8 MB): each fixture
    uses at most a tenth of each count bound, a quarter of the nesting, a hundredth of the string bound."""
    data = (fixtures_dir / f"{name}.pkl").read_bytes()
    stats = {}
    assert safe_pickle._scan_pickle(data, 0, len(data), stats) == len(data)
    assert stats["opcodes"] * 10 <= safe_pickle.MAX_OPCODES and stats["containers"] * 10 <= safe_pickle.MAX_CONTAINERS
    assert stats["memo"] * 10 <= safe_pickle.MAX_MEMO and stats["nesting"] * 4 <= safe_pickle.MAX_NESTING
    assert stats["string"] * 100 <= safe_pickle.MAX_STRING and stats["bytes"] * 16 <= safe_pickle.MAX_BYTES
    converters = []

    class Counting(safe_pickle._Converter):
        def __init__(self):
            super().__init__()
            converters.append(self)

    monkeypatch.setattr(safe_pickle, "_Converter", Counting)
    read_snapshot(fixtures_dir / f"{name}.pkl")
    assert converters[0].visits * 10 <= safe_pickle.MAX_VISITS
    if name == "small64":  # the numbers docs/security.md and the module give
        assert (stats["opcodes"], stats["memo"], stats["nesting"], stats["string"], stats["bytes"]) == (
            23_798, 5_276, 32, 37_391, 1_048_830)
        assert 6_000 < stats["containers"] < 7_000 and converters[0].visits == 2_896


def test_bounds_are_checked_before_the_c_unpickler_sees_a_byte(tmp_path, monkeypatch):
    def never(self):
        raise AssertionError("the unpickler ran")

    monkeypatch.setattr(safe_pickle._SnapshotUnpickler, "load", never)
    for data, message in [
        (b"\x80\x04Nr\x00\xe1\xf5\x05.", "byte 3 uses memo entry 100,000,000; a network file needs fewer than 250,000"),
        (b"\x80\x04}" + b")" + b"\x85" * 2_000_000 + b"Ns.", "a value is nested more than 128 levels deep (byte 131)"),
        (b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b".",
         "byte 2 starts a bytes object of 4,611,686,018,427,387,904"),
        (b"\x80\x04\x95" + struct.pack("<Q", 2**60) + b"N.", "byte 2 starts a frame of"),
        (b"\x80\x04" + b"\x8f" * 300_000 + b".", "it makes more than 250,000 containers and objects"),
        (b"\x80\x04I1\n.", "it uses the opcode INT (byte 2), which network pickles of protocol 2-5 never use"),
        (b"\x80\x04\xff.", "byte 2 holds b'\\xff', which is no pickle opcode"),
        (b"\x80\x04h\x07.", "byte 2 uses memo entry 7 before it is defined"),
    ]:
        path = write(tmp_path, data)
        with pytest.raises(NvidiaPickleError) as caught:
            read_snapshot(path)
        assert str(caught.value).startswith(f"{path} is not a readable NVIDIA network pickle: {message}"), caught.value
    path = write(tmp_path, b"\x80\x04\x8e" + struct.pack("<Q", 100) + b"abc")
    with pytest.raises(NvidiaPickleError, match=r"is truncated: its pickle stops before its end \(14 bytes\)"):
        read_snapshot(path)


def test_views_of_one_storage_copied_over_and_over_are_refused_within_the_files_size(tmp_path):
    memory = np.arange(1 << 16, dtype=np.float32)  # 256 KiB
    views = {f"t{i}": Tensor(memory.reshape(256, 256).T, False, memory=memory, size=(256, 256), stride=(1, 256))
             for i in range(20)}  # 20 copies of 256 KiB: 5 MiB from a file of about 5 MiB (one blob per tensor) ...
    read_snapshot(write(tmp_path, dumps(small_snapshot(views))))  # ... is within the budget
    shared = Storage(storage_blob(memory))

    class View:
        def __reduce__(self):
            return REBUILD_TENSOR, (shared, 0, (256, 256), (1, 256), False, collections.OrderedDict())

    data = dumps(small_snapshot({}, attributes={"views": [View() for _ in range(200)]}))  # one blob, 200 views
    assert len(data) < 300_000
    with pytest.raises(NvidiaPickleError, match=r"its tensors would be copied to more than [\d,]+ bytes, more than the "
                                                r"file holds: one storage viewed many times over\?"):
        read_snapshot(write(tmp_path, data))


def test_values_shared_exponentially_end_after_a_bounded_walk(tmp_path):
    shared = []
    for _ in range(60):
        shared = [shared, shared]
    started = time.perf_counter()
    with pytest.raises(NvidiaPickleError, match=r"it holds more than 100,000 values \(shared ones counted each time "
                                                r"they are used\), which no network file does"):
        read_snapshot(write(tmp_path, dumps(small_snapshot({}, attributes={"cache": shared}))))
    assert time.perf_counter() - started < 3
    child = small_network({})
    parent = Persistent("Generator", {"_parameters": {}, "_buffers": {}, "_modules": {"a": child, "b": child}}, "x")
    with pytest.raises(NvidiaPickleError, match="network module Generator is held by more than one module; NVIDIA's "
                                                "networks share none"):
        read_snapshot(write(tmp_path, dumps({"G": parent, "D": parent, "G_ema": parent})))


def test_a_fifo_or_device_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "network-snapshot.pkl"
    os.mkfifo(fifo)
    with pytest.raises(NvidiaPickleError, match=r"is not a regular file \(a FIFO, socket or device\)"):
        read_snapshot(fifo)
