"""Hostile files and folders (issue 33): attack files built here from pickle opcodes (nothing binary is
committed), a harness that runs each attack as the command line in a forked child under a memory limit
and a timeout, and a fuzzer of the NVIDIA fixtures' bytes.

Used by tests/test_hostile_nvidia.py, tests/test_hostile_folders.py and benchmarks/fuzz_nvidia_reader.py.
Run as a script it prints one JSON line per attack (`python tests/hostile.py --attacks`) or per fuzzed
file (`--fuzz N --seed S`): a fresh interpreter that never imports TensorFlow, forking one child per
attack so that each child's time and peak memory (`wait4`'s ru_maxrss) are its own.

Each child gets RLIMIT_AS = its address space at the fork + ADDRESS_MARGIN: an attack that asks for
gigabytes fails inside the child rather than swapping the machine, and is then reported as not held.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import pickle
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
FIXTURES = Path(os.environ.get("NVIDIA_STYLEGAN2_ADA_DIR", ROOT.parent / "shared" / "nvidia-stylegan2-ada"))

TIME_LIMIT = 5.0  # seconds an attack may take (the bound on the 2-core machine)
MEMORY_LIMIT_MB = 500  # peak resident memory an attack may reach
ADDRESS_MARGIN = 500 << 20  # address space a child may add to what it had at the fork
KILL_AFTER = 60.0  # a child still running then is killed (and reported as not held)


# ----------------------------------------------------------------------------- a pickle assembler


def proto(n=4):
    return b"\x80" + bytes([n])


def text(value: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    return (b"\x8c" + bytes([len(data)]) if len(data) < 256 else b"X" + struct.pack("<I", len(data))) + data


def raw(value: bytes) -> bytes:
    return (b"C" + bytes([len(value)]) if len(value) < 256 else b"B" + struct.pack("<I", len(value))) + value


def integer(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if -2**31 <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def floating(value: float) -> bytes:
    return b"G" + struct.pack(">d", value)


NONE, TRUE, FALSE = b"N", b"\x88", b"\x89"


def glob(module: str, name: str) -> bytes:
    return text(module) + text(name) + b"\x93"


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def lst(*items: bytes) -> bytes:
    return b"]" + (b"(" + b"".join(items) + b"e" if items else b"")


def dct(*pairs) -> bytes:
    return b"}" + (b"(" + b"".join(key + value for key, value in pairs) + b"u" if pairs else b"")


def call(function: bytes, *args: bytes) -> bytes:
    return function + tup(*args) + b"R"


def put(index: int) -> bytes:
    return b"r" + struct.pack("<I", index)


def get(index: int) -> bytes:
    return b"j" + struct.pack("<I", index)


def ordered_dict(*pairs) -> bytes:
    items = b"(" + b"".join(key + value for key, value in pairs) + b"u" if pairs else b""
    return call(glob("collections", "OrderedDict")) + items


TORCH_MAGIC = 0x1950A86A20F9469CFC6C
ADA_SOURCE = "".join(f"class {name}(torch.nn.Module):\n    pass\n" for name in [
    "MappingNetwork", "SynthesisLayer", "SynthesisBlock", "SynthesisNetwork", "Generator", "DiscriminatorBlock",
    "DiscriminatorEpilogue", "Discriminator"]) + "# skip_w_avg_update\n"


def storage_blob(values, numel=None, header_numel=None, nested_extra=b"") -> bytes:
    """A legacy torch.save stream of one float32 storage (what torch.storage._load_from_bytes reads)."""
    import numpy as np

    flat = np.ascontiguousarray(values, "<f4").reshape(-1)
    numel = flat.size if numel is None else numel
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    stream = pickle.dumps(TORCH_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2) + pickle.dumps(info, protocol=2)
    stream += (b"\x80\x02" + nested_extra + b"(" + text("storage") + b"ctorch\nFloatStorage\n" + text("0") + text("cpu")
               + integer(numel) + NONE + b"tQ.")
    stream += pickle.dumps(["0"], protocol=2)
    return stream + struct.pack("<q", flat.size if header_numel is None else header_numel) + flat.tobytes()


def tensor(storage: bytes, size, stride=None, offset=0, parameter=False) -> bytes:
    """_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) (wrapped as a parameter)."""
    if stride is None:
        stride, step = [], 1
        for n in reversed(size):
            stride.insert(0, step)
            step *= n
    built = call(glob("torch._utils", "_rebuild_tensor_v2"), storage, integer(offset), tup(*map(integer, size)),
                 tup(*map(integer, stride)), FALSE, ordered_dict())
    return call(glob("torch._utils", "_rebuild_parameter"), built, FALSE, ordered_dict()) if parameter else built


def storage(values, **options) -> bytes:
    return call(glob("torch.storage", "_load_from_bytes"), raw(storage_blob(values, **options)))


def module(class_name="Generator", parameters=(), buffers=(), children=(), extra=(), init_kwargs=None,
           source=ADA_SOURCE) -> bytes:
    """An NVIDIA network module as torch_utils.persistence pickles it, from opcode fragments."""
    state = [(text("training"), FALSE), (text("_parameters"), ordered_dict(*parameters)),
             (text("_buffers"), ordered_dict(*buffers)), (text("_modules"), ordered_dict(*children)),
             (text("_init_args"), b")"), (text("_init_kwargs"), init_kwargs or dct()), *extra]
    meta = dct((text("type"), text("class")), (text("version"), integer(6)), (text("module_src"), text(source)),
               (text("class_name"), text(class_name)), (text("state"), dct(*state)))
    return call(glob("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)


def snapshot(g=None, d=None, g_ema=None, training_set_kwargs=NONE, extra=()) -> bytes:
    """A whole pickle: dict(training_set_kwargs=..., G=..., D=..., G_ema=..., augment_pipe=None)."""
    g = g or module()
    return proto() + dct((text("training_set_kwargs"), training_set_kwargs), (text("G"), g),
                         (text("D"), d or module("Discriminator")), (text("G_ema"), g_ema or g),
                         (text("augment_pipe"), NONE), *extra) + b"."


def laughs(levels=50, first_index=100_000, kind="list") -> bytes:
    """'Billion laughs': each level holds the level below twice (2**levels values, a few bytes each)."""
    out = (b")" if kind == "tuple" else b"]") + put(first_index) + b"0"
    for level in range(1, levels + 1):
        below = get(first_index + level - 1)
        if kind == "list":
            out += b"](" + below + below + b"e"
        elif kind == "dict":
            out += b"}(" + text("a") + below + text("b") + below + b"u"
        else:  # a tuple: hashing it walks every path
            out += below + below + b"\x86"
        out += put(first_index + level) + (b"0" if level < levels else b"")
    return out  # leaves the top level on the stack


def deep_tuple(depth: int) -> bytes:
    return b")" + b"\x85" * depth


# ----------------------------------------------------------------------------- NVIDIA's fixture re-pickled


class _Named:
    """An object that pickles as REDUCE(GLOBAL module.name, args): stand-ins that are never called."""

    def __init__(self, module, name, args):
        self.module, self.name, self.args = module, name, args

    def __reduce__(self):
        return _global(self.module, self.name), self.args


_GLOBALS = {}


def _global(module, name):
    key = (module, name)
    if key not in _GLOBALS:
        def stand_in(*args):
            raise AssertionError("a stand-in is never called")

        stand_in.__module__, stand_in.__qualname__, stand_in.__name__ = module, name, name
        _GLOBALS[key] = stand_in
    return _GLOBALS[key]


class _Pickler(pickle._Pickler):
    """The pure-Python pickler, writing our stand-in functions under NVIDIA's global names."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_global(self, obj, name=None):
        for (module, qualname), function in _GLOBALS.items():
            if function is obj:
                self.save(module)
                self.save(qualname)
                self.write(pickle.STACK_GLOBAL)
                self.memoize(obj)
                return
        super().save_global(obj, name)


_Pickler.dispatch[types.FunctionType] = lambda self, obj: self.save_global(obj)


def _tensor_object(array, parameter):
    import numpy as np

    array = np.asarray(array)
    storage_ = _Named("torch.storage", "_load_from_bytes", (storage_blob(array.astype(np.float32)),))
    built = _Named("torch._utils", "_rebuild_tensor_v2",
                   (storage_, 0, tuple(array.shape), _strides(array.shape), False, collections.OrderedDict()))
    return _Named("torch._utils", "_rebuild_parameter", (built, False, collections.OrderedDict())) if parameter \
        else built


def _module_object(record, sources, edit=None, prefix="", make=None):
    import numpy as np

    make = make or _tensor_object
    state = {"training": False}
    state["_parameters"] = collections.OrderedDict(
        (key, make((edit or {}).get(prefix + key, array), True)) for key, array in record.parameters.items())
    buffers = {**record.buffers, **record.non_persistent_buffers}
    state["_buffers"] = collections.OrderedDict(
        (key, make((edit or {}).get(prefix + key, array), False)) for key, array in buffers.items())
    state["_non_persistent_buffers_set"] = set(record.non_persistent_buffers)
    state["_modules"] = collections.OrderedDict(
        (key, _module_object(child, sources, edit, f"{prefix}{key}.", make)) for key, child in record.children.items())
    for key, value in record.attributes.items():
        if key != "training":
            state[key] = np.float64(value) if type(value) is float else value
    state["_init_args"] = record.init_args
    state["_init_kwargs"] = record.init_kwargs
    meta = dict(type="class", version=6, module_src=sources[record.source_sha256], class_name=record.class_name,
                state=state)
    return _Named("torch_utils.persistence", "_reconstruct_persistent_obj", (meta,))


_FIXTURE_CACHE = {}


def fixture_records(name="tiny32"):
    """(snapshot, sources by sha256) of a fixture, read once."""
    if name not in _FIXTURE_CACHE:
        from keras_anime_gan.nvidia.safe_pickle import read_snapshot
        import hashlib

        data = (FIXTURES / f"{name}.pkl").read_bytes()
        sources, start = {}, 0
        while (start := data.find(b"# Copyright (c) 2021, NVIDIA CORPORATION", start + 1)) > 0:
            length = struct.unpack("<I", data[start - 4:start])[0]
            source = data[start:start + length].decode()
            sources[hashlib.sha256(source.encode()).hexdigest()] = source
        _FIXTURE_CACHE[name] = (read_snapshot(FIXTURES / f"{name}.pkl"), sources)
    return _FIXTURE_CACHE[name]


def edited_fixture(kwargs=None, tensors=None, extra=None) -> bytes:
    """tiny32.pkl re-pickled with edits: kwargs[network] is a function changing a deep copy of its
    init_kwargs (G_ema follows G), tensors[network] maps state-dict keys to replacement arrays,
    extra adds top-level keys."""
    import copy

    snapshot_, sources = fixture_records("tiny32")
    data = {"training_set_kwargs": dict(snapshot_.training_set_kwargs)}
    for name, record in snapshot_.networks.items():
        record = copy.copy(record)
        edit = (kwargs or {}).get("G" if name == "G_ema" else name)
        if edit is not None:
            record.init_kwargs = copy.deepcopy(record.init_kwargs)
            edit(record.init_kwargs)
        data[name] = _module_object(record, sources, (tensors or {}).get(name))
    data.update(extra or {})
    out = io.BytesIO()
    _Pickler(out, 4).dump(data)
    return out.getvalue()


# ----------------------------------------------------------------------------- the attacks


@dataclass
class Attack:
    kind: str  # as in the list
    name: str
    prepare: object  # prepare(folder) -> (argv, check) with check(folder, result) -> None or what went wrong
    exit_status: int = 2
    needs_fixture: bool = False


def _victim(folder):
    victim = folder / "victim.txt"
    victim.write_text("the user's file\n")
    return victim


def _victim_unchanged(folder):
    victim = folder / "victim.txt"
    if not victim.exists() or victim.read_text() != "the user's file\n":
        return "the victim file was changed"
    return None


def _pickle_attack(kind, name, data_or_builder, needs_fixture=False, out_exists=False):
    """An attack file given to `import-nvidia FILE --out OUT`: one error line, no OUT left behind."""

    def prepare(folder):
        data = data_or_builder() if callable(data_or_builder) else data_or_builder
        path = folder / "network-snapshot-000000.pkl"
        path.write_bytes(data)
        out = folder / "imported"
        if out_exists:
            out.mkdir()

        def check(folder, result):
            if out_exists:
                return None if sorted(os.listdir(out)) == [] else f"{out} is left holding {os.listdir(out)}"
            return f"{out} was left behind" if out.exists() else None

        return ["import-nvidia", str(path), "--out", str(out)], check

    return Attack(kind, name, prepare, needs_fixture=needs_fixture)


def _lock_attack(name, plant, command="import-nvidia"):
    def prepare(folder):
        _victim(folder)
        target = folder / ("imported" if command == "import-nvidia" else "dataset")
        target.mkdir()
        plant(folder, target / ".lock")
        if command == "import-nvidia":
            argv = ["import-nvidia", str(FIXTURES / "tiny32.pkl"), "--out", str(target)]
        else:
            images = _images(folder)
            argv = ["convert", str(images), str(target), "--resolution", "32", "--workers", "1", "--quiet"]

        def check(folder, result):
            if (folder / "created-through-the-link").exists():
                return "a file was created through the dangling link"
            if "is " not in result["error"] or ".lock" not in result["error"]:
                return f"the error does not name the lock file: {result['error']}"
            return _victim_unchanged(folder)

        return argv, check

    return Attack("symlink-lock", name, prepare, needs_fixture=command == "import-nvidia")


def _images(folder, count=4):
    import numpy as np
    from PIL import Image

    images = folder / "images"
    images.mkdir(exist_ok=True)
    for index in range(count):
        pixels = np.random.default_rng(index).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{index}.png")
    return images


def _hardlink(folder, lock):
    os.link(folder / "victim.txt", lock)


ATTACKS = [
    # 1. a .lock that is not a lock file
    _lock_attack("symlink to the user's file", lambda folder, lock: os.symlink(folder / "victim.txt", lock)),
    _lock_attack("dangling symlink", lambda folder, lock: os.symlink(folder / "created-through-the-link", lock)),
    _lock_attack("hard link to the user's file", _hardlink),
    _lock_attack("a folder", lambda folder, lock: os.mkdir(lock)),
    _lock_attack("a FIFO", lambda folder, lock: os.mkfifo(lock)),
    _lock_attack("symlink, convert", lambda folder, lock: os.symlink(folder / "victim.txt", lock), "convert"),
    _lock_attack("dangling symlink, convert",
                 lambda folder, lock: os.symlink(folder / "created-through-the-link", lock), "convert"),
    # 2. values shared exponentially many times over ("billion laughs")
    _pickle_attack("billion-laughs", "list, in training_set_kwargs", snapshot(training_set_kwargs=laughs(50))),
    _pickle_attack("billion-laughs", "dict, as a module attribute",
                   snapshot(g=module(extra=[(text("cache"), laughs(50, kind="dict"))]))),
    _pickle_attack("billion-laughs", "given to OrderedDict",
                   snapshot(training_set_kwargs=laughs(50) + b"0" + call(glob("collections", "OrderedDict"),
                                                                          lst(tup(text("k"), get(100_050)))))),
    _pickle_attack("billion-laughs", "as a tensor's size",
                   snapshot(g=module(parameters=[(text("w"), laughs(50) + b"0" + call(
                       glob("torch._utils", "_rebuild_tensor_v2"), storage([0.0] * 4), integer(0),
                       tup(get(100_050), get(100_050)), tup(integer(1), integer(1)), FALSE, ordered_dict()))]))),
    _pickle_attack("billion-laughs", "in G's and G_ema's constructor arguments",
                   snapshot(g=module(init_kwargs=dct((text("z_dim"), laughs(40)))),
                            g_ema=module(init_kwargs=dct((text("z_dim"), laughs(40, first_index=120_000)))))),
    _pickle_attack("billion-laughs", "tuples, as a dict key",
                   snapshot(g=module(extra=[(text("table"), dct((laughs(50, kind="tuple"), NONE)))]))),
    _pickle_attack("billion-laughs", "tuples, given to numpy.dtype",
                   snapshot(g=module(extra=[(text("dtype"), call(glob("numpy", "dtype"), laughs(40, kind="tuple")))]))),
    _pickle_attack("billion-laughs", "modules, each held twice by the one above",
                   lambda: _module_laughs(20)),
    # 3. nesting deep enough to overflow C's stack (hashing, repr, comparison)
    _pickle_attack("deep-nesting", "tuple 2,000,000 deep as a top-level key",
                   proto() + b"}" + deep_tuple(2_000_000) + NONE + b"s."),
    _pickle_attack("deep-nesting", "tuple 2,000,000 deep as a module attribute's key",
                   snapshot(g=module(extra=[(text("table"), b"}" + deep_tuple(2_000_000) + NONE + b"s")]))),
    _pickle_attack("deep-nesting", "frozenset 100,000 deep",
                   proto() + b"(" * 100_000 + b"(\x91" + b"\x91" * 100_000 + b"."),
    _pickle_attack("deep-nesting", "a frozenset holding a tuple 2,000,000 deep",
                   proto() + b"(" + deep_tuple(2_000_000) + b"\x91."),
    _pickle_attack("deep-nesting", "list 2,000,000 deep in training_set_kwargs",
                   snapshot(training_set_kwargs=b"]" * 2_000_000 + b"a" * 1_999_999)),
    _pickle_attack("deep-nesting", "list nested by appends in reverse order",
                   snapshot(training_set_kwargs=b"".join(b"]" + put(i) for i in range(1_000)) + b"0"
                            + b"".join(get(i + 1) + get(i) + b"a0" for i in range(999)) + get(999))),
    _pickle_attack("deep-nesting", "dict 1,000,000 deep", proto() + (b"}" + text("k")) * 1_000_000 + b"}"
                   + b"s" * 1_000_000 + b"."),
    _pickle_attack("deep-nesting", "1,000,000 open MARKs", proto() + b"(" * 1_000_000 + NONE + b"."),
    # 4. a few bytes that ask for gigabytes
    _pickle_attack("few-bytes-gigabytes", "memo index 10**8 (9 bytes)", b"\x80\x04Nr\x00\xe1\xf5\x05."),
    _pickle_attack("few-bytes-gigabytes", "memo index 2**32 - 1", b"\x80\x04Nr\xff\xff\xff\xff."),
    _pickle_attack("few-bytes-gigabytes", "memo index 10**8 in a storage's nested pickle",
                   snapshot(g=module(parameters=[(text("w"), tensor(call(glob("torch.storage", "_load_from_bytes"),
                       raw(storage_blob([1.0] * 4, nested_extra=b"N" + put(10**8) + b"0"))), [4], parameter=True))]))),
    _pickle_attack("few-bytes-gigabytes", "a memo entry used before it is defined", proto() + get(7) + b"."),
    _pickle_attack("few-bytes-gigabytes", "bytes of 2**62 claimed",
                   proto() + b"\x8e" + struct.pack("<Q", 2**62) + b"."),
    _pickle_attack("few-bytes-gigabytes", "a string of 2**40 claimed",
                   proto() + b"\x8d" + struct.pack("<Q", 2**40) + b"."),
    _pickle_attack("few-bytes-gigabytes", "bytes of 4 GB - 1 claimed", proto() + b"B\xff\xff\xff\xff" + b"."),
    _pickle_attack("few-bytes-gigabytes", "a frame of 2**60 claimed", proto() + b"\x95" + struct.pack("<Q", 2**60)
                   + b"N."),
    _pickle_attack("few-bytes-gigabytes", "an integer of 1 MB", proto() + b"\x8b" + struct.pack("<i", 1 << 20)
                   + b"\x01" * (1 << 20) + b"."),
    _pickle_attack("few-bytes-gigabytes", "a string of 20 MB", proto() + b"\x8d" + struct.pack("<Q", 20 << 20)
                   + b"a" * (20 << 20) + b"."),
    _pickle_attack("few-bytes-gigabytes", "300,000 empty sets", proto() + b"\x8f" * 300_000 + b"."),
    _pickle_attack("few-bytes-gigabytes", "1,100,000 opcodes", proto() + b"N0" * 550_000 + b"N."),
    _pickle_attack("few-bytes-gigabytes", "a storage claiming 2**40 elements",
                   snapshot(g=module(parameters=[(text("w"), tensor(storage([1.0] * 4, numel=2**40), [4]))]))),
    _pickle_attack("few-bytes-gigabytes", "a tensor of 2**62 elements over 4",
                   snapshot(g=module(parameters=[(text("w"), tensor(storage([1.0] * 4), [2**31, 2**31], [1, 1]))]))),
    _pickle_attack("few-bytes-gigabytes", "one 4 MB storage viewed 2,000 times, transposed",
                   lambda: _copied_views(2_000)),
    _pickle_attack("few-bytes-gigabytes", "w_dim 8192 with no weights", lambda: _widths(w_dim=8192)),
    _pickle_attack("few-bytes-gigabytes", "w_dim 4096 with no weights", lambda: _widths(w_dim=4096)),
    _pickle_attack("few-bytes-gigabytes", "z_dim 10**9", lambda: _widths(z_dim=10**9)),
    _pickle_attack("few-bytes-gigabytes", "10**6 mapping layers", lambda: _widths(mapping_layers=10**6)),
    _pickle_attack("few-bytes-gigabytes", "resolution 2**20", lambda: _widths(resolution=2**20)),
    _pickle_attack("few-bytes-gigabytes", "channel_max 2**30 and channel_base 2**40",
                   lambda: _widths(channel_max=2**30, channel_base=2**40)),
    _pickle_attack("few-bytes-gigabytes", "every tensor a view of one storage", lambda: _shared_storage(),
                   needs_fixture=True),
    # 5. malformed values, and NaN or inf, in an otherwise real snapshot
    _pickle_attack("bad-values", "a tensor as z_dim", lambda: _fixture_kwargs("z_dim", "tensor"), needs_fixture=True),
    _pickle_attack("bad-values", "an int as mapping_kwargs", lambda: _fixture_kwargs("mapping_kwargs", 5),
                   needs_fixture=True),
    _pickle_attack("bad-values", "a string resample_filter", lambda: _fixture_kwargs("resample_filter", "1331"),
                   needs_fixture=True),
    _pickle_attack("bad-values", "a list as img_resolution", lambda: _fixture_kwargs("img_resolution", [32]),
                   needs_fixture=True),
    _pickle_attack("bad-values", "NaN as conv_clamp", lambda: _fixture_kwargs("conv_clamp", float("nan")),
                   needs_fixture=True),
    _pickle_attack("bad-values", "a vector ADA p", lambda: _fixture_tensor("augment_pipe", "p", [0.1, 0.2, 0.3]),
                   needs_fixture=True),
    _pickle_attack("bad-values", "NaN in G_ema", lambda: _fixture_tensor("G_ema", "synthesis.b8.conv0.weight", "nan"),
                   needs_fixture=True),
    _pickle_attack("bad-values", "inf in G_ema's w_avg", lambda: _fixture_tensor("G_ema", "mapping.w_avg", "inf"),
                   needs_fixture=True),
    _pickle_attack("bad-values", "NaN in D", lambda: _fixture_tensor("D", "b4.out.bias", "nan"), needs_fixture=True),
    _pickle_attack("bad-values", "NaN in G, into an empty --out",
                   lambda: _fixture_tensor("G", "mapping.fc0.bias", "nan"), needs_fixture=True, out_exists=True),
    _pickle_attack("bad-values", "an int as a module's constructor arguments",
                   snapshot(g=module(extra=[(text("_init_args"), integer(5))]))),
    _pickle_attack("bad-values", "a module named by a 100 KB string",
                   snapshot(g=module(class_name="G" * 100_000))),
]


def _module_laughs(levels):
    # module k holds module k-1 twice (as children a and b): modules shared by two parents
    out = module(class_name="Leaf") + put(150_000)
    for level in range(1, levels + 1):
        below = get(150_000 + level - 1)
        out += b"0" + module(class_name=f"Level{level}", children=[(text("a"), below), (text("b"), below)])
        out += put(150_000 + level)
    return snapshot(g=out)


def _copied_views(count):
    import numpy as np

    blob = storage_blob(np.zeros(1 << 20, np.float32))  # 4 MB
    shared = call(glob("torch.storage", "_load_from_bytes"), raw(blob)) + put(160_000)
    views = [tensor(get(160_000) if index else shared, [1024, 1024], [1, 1024]) for index in range(count)]
    return snapshot(g=module(extra=[(text("views"), lst(*views))]))


def _widths(resolution=1024, z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512):
    g_kwargs = dct((text("z_dim"), integer(z_dim)), (text("c_dim"), integer(0)), (text("w_dim"), integer(w_dim)),
                   (text("img_resolution"), integer(resolution)), (text("img_channels"), integer(3)),
                   (text("mapping_kwargs"), dct((text("num_layers"), integer(mapping_layers)))),
                   (text("synthesis_kwargs"), dct((text("channel_base"), integer(channel_base)),
                                                  (text("channel_max"), integer(channel_max)))))
    d_kwargs = dct((text("c_dim"), integer(0)), (text("img_resolution"), integer(resolution)),
                   (text("img_channels"), integer(3)), (text("channel_base"), integer(channel_base)),
                   (text("channel_max"), integer(channel_max)))
    return snapshot(g=module(init_kwargs=g_kwargs), d=module("Discriminator", init_kwargs=d_kwargs))


def _fixture_kwargs(name, value):
    import numpy as np

    if value == "tensor":
        value = _tensor_object(np.array(64.0), False)

    def edit(kwargs):
        if name in ("mapping_kwargs", "img_resolution", "z_dim"):
            kwargs[name] = value
        else:
            kwargs.setdefault("synthesis_kwargs", {})[name] = value

    return edited_fixture(kwargs={"G": edit})


def _fixture_tensor(network, key, value):
    import numpy as np

    snapshot_, _ = fixture_records("tiny32")
    original = snapshot_.networks[network].state_dict().get(key, snapshot_.networks[network].buffers.get(key))
    if value in ("nan", "inf"):
        changed = np.array(original, np.float32, copy=True)
        changed.reshape(-1)[len(changed.reshape(-1)) // 2] = np.nan if value == "nan" else np.inf
    else:
        changed = np.asarray(value, np.float32)
    return edited_fixture(tensors={network: {key: changed}})


def _shared_storage():
    """tiny32 with every tensor of G, D and G_ema a contiguous view at offset 0 of one storage: the shapes
    fit, the values are finite, and the networks would be many times larger than the file."""
    import numpy as np

    snapshot_, sources = fixture_records("tiny32")
    largest = max(a.size for name in ("G", "D", "G_ema") for a in snapshot_.networks[name].state_dict().values())
    values = np.zeros(largest, np.float32)
    values[:16] = (np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64).reshape(-1)  # a view of it is a standard filter
    shared = _Named("torch.storage", "_load_from_bytes", (storage_blob(values),))

    def view(array, parameter):
        return _Named("torch._utils", "_rebuild_tensor_v2", (shared, 0, tuple(array.shape), _strides(array.shape),
                                                             False, collections.OrderedDict()))

    data = {"training_set_kwargs": dict(snapshot_.training_set_kwargs)}
    for name, record in snapshot_.networks.items():
        data[name] = _module_object(record, sources, make=view if name != "augment_pipe" else _tensor_object)
    out = io.BytesIO()
    _Pickler(out, 4).dump(data)
    return out.getvalue()


def _strides(shape):
    stride, step = [], 1
    for n in reversed(shape):
        stride.insert(0, step)
        step *= n
    return tuple(stride)


def _dataset_attack(name, edit, exit_status=1, expect="damaged: "):
    """`verify` of a converted dataset whose dataset.json or shards were edited: damage, named."""

    def prepare(folder):
        dataset = _converted(folder)
        entry = edit(folder, dataset)

        def check(folder, result):
            lines = result["stderr"].splitlines()
            if not any(line.startswith(expect) and entry in line for line in lines):
                return f"no line names {entry!r}: {result['stderr'][-300:]}"
            return _victim_unchanged(folder)

        return ["verify", str(dataset), "--quiet"], check

    return Attack("dataset-escape", name, prepare, exit_status)


def _converted(folder):
    from keras_anime_gan.data import convert_folder

    _victim(folder)
    dataset = folder / "dataset"
    convert_folder(str(_images(folder)), str(dataset), 32, progress=False, workers=1)
    return dataset


def _edit_manifest(change):
    def edit(folder, dataset):
        manifest = json.loads((dataset / "dataset.json").read_text())
        entry = change(folder, dataset, manifest)
        (dataset / "dataset.json").write_text(json.dumps(manifest))
        return entry

    return edit


def _name_shard(name, shown=None):
    def change(folder, dataset, manifest):
        value = name(folder) if callable(name) else name
        manifest["shards"][0]["file"] = value
        return shown or value

    return change


def _link_shard(folder, dataset):
    shard = dataset / "shard-00000-of-00001.tfrecords"
    shard.unlink()
    os.symlink(folder / "victim.txt", shard)
    return "shard-00000-of-00001.tfrecords"


def _fifo_shard(folder, dataset):
    shard = dataset / "shard-00000-of-00001.tfrecords"
    shard.unlink()
    os.mkfifo(shard)
    return "shard-00000-of-00001.tfrecords"


ATTACKS += [
    _dataset_attack("../x.tfrecords", _edit_manifest(_name_shard("../victim.txt"))),
    _dataset_attack("an absolute path", _edit_manifest(_name_shard(lambda folder: str(folder / "victim.txt")))),
    _dataset_attack("a path inside a subfolder", _edit_manifest(_name_shard("sub/shard.tfrecords"))),
    _dataset_attack("'..'", _edit_manifest(_name_shard(".."))),
    _dataset_attack("a number as the name", _edit_manifest(_name_shard(7, "shard entry 0"))),
    _dataset_attack("a shard that links outside the folder", _link_shard),
    _dataset_attack("a FIFO as the shard", _fifo_shard),
]


def _overwrite_attack(name, plant, exit_status=2, kept=(), refused_name=None):
    """`convert --overwrite` into a dataset folder holding things that are not the converter's."""

    def prepare(folder):
        dataset = _converted(folder)
        plant(folder, dataset)
        before = sorted(os.listdir(dataset))
        argv = ["convert", str(folder / "images"), str(dataset), "--resolution", "32", "--workers", "1", "--overwrite",
                "--quiet"]

        def check(folder, result):
            if result["exit"] == 2 and sorted(os.listdir(dataset)) != before:
                return f"refused, but removed something: {before} -> {sorted(os.listdir(dataset))}"
            if refused_name and refused_name not in result["error"]:
                return f"the error does not name {refused_name}: {result['error']}"
            for path in kept:
                if not os.path.lexists(dataset / path):
                    return f"{path} was removed"
            linked = folder / "victim-folder"
            if linked.exists() and sorted(os.listdir(linked)) != ["00000.json", "inside.txt"]:
                return "a file in the linked folder was removed"
            return _victim_unchanged(folder)

        return argv, check

    return Attack("convert-overwrite", name, prepare, exit_status)


def _victim_folder(folder):
    target = folder / "victim-folder"
    target.mkdir()
    (target / "inside.txt").write_text("kept")
    (target / "00000.json").write_text("{}")
    return target


ATTACKS += [
    _overwrite_attack("a folder named like a shard",
                      lambda folder, dataset: (dataset / "shard-00007-of-00009.tfrecords").mkdir(),
                      refused_name="shard-00007-of-00009.tfrecords"),
    _overwrite_attack("a link named like a shard, to the user's file",
                      lambda folder, dataset: os.symlink(folder / "victim.txt",
                                                         dataset / "shard-00003-of-00004.tfrecords"),
                      refused_name="shard-00003-of-00004.tfrecords"),
    _overwrite_attack(".progress as a link to the user's folder",
                      lambda folder, dataset: os.symlink(_victim_folder(folder), dataset / ".progress"),
                      refused_name=".progress"),
    _overwrite_attack("the user's own .tfrecords, .tmp and folders kept",
                      lambda folder, dataset: [(dataset / "notes.tfrecords").write_text("mine"),
                                               (dataset / "x.tmp").write_text("mine"),
                                               (dataset / "old.tfrecords").mkdir()],
                      exit_status=0, kept=("notes.tfrecords", "x.tmp", "old.tfrecords")),
]


# ----------------------------------------------------------------------------- the harness


def _peak_mb() -> float:
    """This process's peak resident memory since it started (VmHWM). Not getrusage's ru_maxrss, which
    Linux carries over an exec from the process that forked it (pytest, with TensorFlow loaded)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _vm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_in_child(function, timeout=KILL_AFTER, margin=ADDRESS_MARGIN) -> dict:
    """Run `function()` (returning an exit status) in a forked child with RLIMIT_AS = its address space
    now + `margin`, stdout and stderr captured; {"exit", "seconds", "peak_mb", "stdout", "stderr"}. A
    child still running after `timeout` is killed (exit "timeout")."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        limit = _vm_bytes() + margin
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child
            status = 1
            try:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
                sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
                status = function()
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                traceback.print_exc()
                status = 1
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(status if isinstance(status, int) else 1)
        deadline = started + timeout
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.perf_counter() > deadline:
                os.kill(pid, signal.SIGKILL)
                _, status, usage = os.wait4(pid, 0)
                status = None
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        exit_ = "timeout" if status is None else (os.waitstatus_to_exitcode(status))
        return {"exit": exit_, "seconds": round(seconds, 3), "peak_mb": round(usage.ru_maxrss / 1024, 1),
                "stdout": out.read().decode("utf-8", "replace"), "stderr": err.read().decode("utf-8", "replace")}


def _cli(argv):
    def run():
        from keras_anime_gan.cli import main

        return main(argv)

    return run


def run_attack(attack: Attack, folder: Path) -> dict:
    """One attack in a fresh folder: its result, and whether it held (every condition of issue 33)."""
    folder.mkdir(parents=True, exist_ok=True)
    argv, check = attack.prepare(folder)
    result = run_in_child(_cli(argv))
    errors = [line for line in result["stderr"].splitlines() if line.startswith(("error", "Traceback"))]
    result["error"] = errors[0] if errors else ""
    problems = []
    if result["exit"] != attack.exit_status:
        problems.append(f"exit {result['exit']}, expected {attack.exit_status}")
    if attack.exit_status == 2 and (len(errors) != 1 or not errors[0].startswith("error: ")):
        problems.append(f"{len(errors)} error lines")
    if "Traceback" in result["stderr"]:
        problems.append("a traceback")
    if result["seconds"] >= TIME_LIMIT:
        problems.append(f"{result['seconds']} s")
    if result["peak_mb"] >= MEMORY_LIMIT_MB:
        problems.append(f"{result['peak_mb']} MB")
    if result["exit"] != "timeout":
        found = check(folder, result)
        if found:
            problems.append(found)
    return {"kind": attack.kind, "name": attack.name, "exit": result["exit"], "seconds": result["seconds"],
            "peak_mb": result["peak_mb"], "error": result["error"][:300], "held": not problems,
            "problems": problems, "stderr": result["stderr"][-1500:] if problems else ""}


def warm_up() -> None:
    """Import what the commands import before TensorFlow (not TensorFlow), so that each forked child's
    time and memory are the attack's, not the package's start-up."""
    import keras_anime_gan.cli  # noqa: F401
    import keras_anime_gan.data.convert  # noqa: F401
    import keras_anime_gan.data.verify  # noqa: F401
    import keras_anime_gan.nvidia_runs  # noqa: F401


def available_attacks():
    warm_up()
    have_fixture = (FIXTURES / "tiny32.pkl").is_file()
    return [attack for attack in ATTACKS if have_fixture or not attack.needs_fixture]


# ----------------------------------------------------------------------------- the fuzzer


_LENGTH_OPS = {0x8C: 1, ord("X"): 4, ord("C"): 1, ord("B"): 4, 0x8E: 8, 0x8D: 8, 0x95: 8, ord("q"): 1, ord("r"): 4,
               ord("h"): 1, ord("j"): 4, ord("K"): 1, ord("M"): 2, ord("J"): 4, 0x8A: 1}
_OPCODE_BYTES = b"N\x88\x89JKMG\x8a\x8c\x8dXCB\x8e)]}\x8f\x85\x86\x87t\x91lda se\x90(01qr\x94hjc\x93R\x81Qb\x80\x95."


def opcode_positions(data: bytes) -> list[tuple[int, int]]:
    """(position, opcode) of every opcode of the pickle `data`, from pickletools (the original is trusted)."""
    import pickletools

    return [(pos, data[pos]) for _, _, pos in pickletools.genops(data)]


def mutate(data: bytes, positions, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of `data`: (what, mutated bytes). Mostly aimed at opcodes and their arguments, where
    a change means something; sometimes anywhere (tensor data)."""
    kind = rng.choice(["flip", "flip", "insert", "length", "length", "delete", "duplicate", "truncate", "anywhere"])
    position, code = rng.choice(positions)
    out = bytearray(data)
    if kind == "flip":
        span = rng.randint(1, 9)
        at = position + rng.randrange(span)
        if at < len(out):
            out[at] ^= 1 << rng.randrange(8)
    elif kind == "anywhere":
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif kind == "insert":
        opcode = bytes([rng.choice(_OPCODE_BYTES)])
        argument = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 4, 8])))
        out[position:position] = opcode + argument
    elif kind == "length":
        width = _LENGTH_OPS.get(code)
        if width is None:
            out[position] = rng.choice(list(_LENGTH_OPS))
            width = _LENGTH_OPS[out[position]]
        value = rng.choice([0, 1, 2**(8 * width) - 1, rng.randrange(2**(8 * width)), 10**8 % 2**(8 * width),
                            2**(8 * width - 1)])
        out[position + 1:position + 1 + width] = value.to_bytes(width, "little")
    elif kind == "delete":
        del out[position:position + rng.randint(1, 64)]
    elif kind == "duplicate":
        end = position + rng.randint(1, 64)
        out[end:end] = out[position:end] * rng.randint(1, 8)
    else:
        del out[rng.randrange(1, len(out)):]
    return kind, bytes(out)


def check_snapshot(path) -> int:
    """What `import-nvidia` does before it builds anything: read the file and check it whole. 0 when it
    would import, 2 (one error line) when it is refused; anything else escapes as a traceback."""
    from keras_anime_gan.errors import UserError
    from keras_anime_gan.nvidia import read_snapshot
    from keras_anime_gan.nvidia_runs import describe_snapshot

    try:
        describe_snapshot(read_snapshot(path))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def fuzz(count: int, seed: int, names=("tiny32",), folder=None, isolate=True, margin=ADDRESS_MARGIN):
    """Yield one result per mutated file: {"fixture", "mutation", "exit", "seconds", "peak_mb", "held"}.
    isolate: each check in its own forked child (its own time, memory limit and peak memory); else in
    this process (much faster; the caller bounds the process as a whole)."""
    rng = random.Random(seed)
    folder = Path(folder or tempfile.mkdtemp(prefix="fuzz-"))
    originals = {name: (FIXTURES / f"{name}.pkl").read_bytes() for name in names}
    positions = {name: opcode_positions(data) for name, data in originals.items()}
    path = folder / "mutated.pkl"
    if not isolate:  # one limit for the whole run: its address space once warmed up, plus the margin
        path.write_bytes(originals[names[0]])
        check_snapshot(path)
        limit = _vm_bytes() + margin
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for index in range(count):
        name = rng.choice(names)
        mutation, data = mutate(originals[name], positions[name], rng)
        path.write_bytes(data)
        if isolate:
            result = run_in_child(lambda: check_snapshot(path))
        else:
            started = time.perf_counter()
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    status = check_snapshot(path)
                except Exception:  # a traceback: not held
                    traceback.print_exc(file=err)
                    status = 1
            result = {"exit": status, "seconds": round(time.perf_counter() - started, 4), "peak_mb": _peak_mb(),
                      "stderr": err.getvalue()}
        lines = [line for line in result["stderr"].splitlines() if line.strip()]
        one_line = result["exit"] == 0 and not lines or (result["exit"] == 2 and len(lines) == 1
                                                         and lines[0].startswith("error: "))
        held = one_line and result["seconds"] < TIME_LIMIT and result["peak_mb"] < MEMORY_LIMIT_MB
        yield {"fixture": name, "index": index, "mutation": mutation, "exit": result["exit"],
               "seconds": result["seconds"], "peak_mb": result["peak_mb"], "held": held,
               "stderr": "" if held else result["stderr"][-1500:]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attacks", action="store_true", help="run every attack; one JSON line each")
    parser.add_argument("--only", default=None, help="attacks whose kind or name contains this")
    parser.add_argument("--fuzz", type=int, default=0, help="this many mutated fixture files; one JSON line each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixtures", default="tiny32", help="comma-separated fixture names to mutate")
    parser.add_argument("--in-process", action="store_true", help="fuzz without a child per file (faster)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        if args.attacks:
            for index, attack in enumerate(available_attacks()):
                if args.only and args.only not in attack.kind and args.only not in attack.name:
                    continue
                print(json.dumps(run_attack(attack, Path(folder) / f"{index:03d}")), flush=True)
        if args.fuzz:
            for result in fuzz(args.fuzz, args.seed, tuple(args.fixtures.split(",")), folder,
                               isolate=not args.in_process):
                print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
