"""Read NVIDIA StyleGAN2-ADA network pickles (`network-snapshot-*.pkl`) without running any of their code.

NVIDIA's snapshots are `pickle.dump(dict(training_set_kwargs=..., G=..., D=..., G_ema=..., augment_pipe=...))`.
Loading one with `pickle.load` runs arbitrary code: each network module is rebuilt by
`torch_utils.persistence._reconstruct_persistent_obj`, which *executes* the Python source embedded in the
file, and each tensor's storage by `torch.storage._load_from_bytes`, which runs `torch.load` on nested bytes.

The safety rule here: the unpickler's `find_class` knows a fixed list of names (`_ALLOWED`) and hands back,
for each, a function of this module, never the real one; any other name is refused before anything is
called. The embedded source is kept only as its sha256 and a label (which NVIDIA file it is), never executed
or parsed as code. Each storage's nested legacy `torch.save` stream is parsed here: its small pickles go
through a second unpickler that knows only the storage type names, and the raw data becomes a read-only
NumPy view of the blob. Offsets, sizes and strides are checked against the storage before any view is made.
The intermediate objects are this module's own classes; pickle's BUILD opcode cannot change them.

Nor can a file hang the reader or make it allocate what the file does not hold (docs/security.md): before
the C unpickler sees a byte, the opcode stream (and each storage's nested stream) is scanned against
bounds no real snapshot comes near (`_scan_pickle`, MAX_*: memo indices, lengths, nesting, tuples whose
hashing would not end, opcodes, containers); the walk from loaded objects to records counts every value
it visits; copies of non-contiguous tensors stay within the file's size; messages show values through
`errors.short_repr`, never a whole repr.

Arrays keep NVIDIA's layouts (OIHW weights, ...) and dtypes: float32 in NVIDIA's snapshots, float16 kept as
float16 (lossless; the weight mapper casts). They are read-only views of the data read from the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import mmap
import os
import pickle
import re
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError, short_repr

__all__ = [
    "ModuleRecord",
    "NvidiaPickleError",
    "RefusedPickleError",
    "Snapshot",
    "read_snapshot",
    "SOURCE_ADA_NETWORKS",
    "SOURCE_ADA_AUGMENT",
    "SOURCE_SG3_NETWORKS_STYLEGAN2",
    "SOURCE_SG3_NETWORKS_STYLEGAN3",
    "SOURCE_SG3_AUGMENT",
    "SOURCE_UNKNOWN",
]


class NvidiaPickleError(UserError):
    """A file that cannot be read as an NVIDIA network pickle; the message says what it is."""


class RefusedPickleError(NvidiaPickleError):
    """A file that references code a network pickle never needs; nothing it names was called."""


SUPPORTED = ("Supported: the network-snapshot-*.pkl files that NVIDIA's stylegan2-ada-pytorch "
             "(or stylegan3) training writes")

# --- which NVIDIA source file a persistent class came from ----------------------------------------------------

SOURCE_ADA_NETWORKS = "stylegan2-ada-pytorch training/networks.py"
SOURCE_ADA_AUGMENT = "stylegan2-ada-pytorch training/augment.py"
SOURCE_SG3_NETWORKS_STYLEGAN2 = "stylegan3 training/networks_stylegan2.py"
SOURCE_SG3_NETWORKS_STYLEGAN3 = "stylegan3 training/networks_stylegan3.py"
SOURCE_SG3_AUGMENT = "stylegan3 training/augment.py"
SOURCE_UNKNOWN = "unknown"

# sha256 of each released file as the persistence code stores it (decoded as utf-8-sig, so with or without
# the BOM that early stylegan3 files had). stylegan2-ada-pytorch changed neither file after its first commit.
_KNOWN_SOURCES = {
    "53b4e1ec457171d4e2c1454d48013765ab626141c35cdd383b020950effe11a5": SOURCE_ADA_NETWORKS,
    "77eb17876bc7ba87cdc9281caf925daf507ce0937b84d0f32134d4d08e13061e": SOURCE_ADA_AUGMENT,
    "b6f14e8fa2a95de4d38218fef31380c6a70de770f585107e209ff83075c307ef": SOURCE_SG3_NETWORKS_STYLEGAN2,
    "06082fb3e8929e477f58fb8bc78e7ecb9a9209eb01444272d1d153c85a6a89f7": SOURCE_SG3_NETWORKS_STYLEGAN3,
    "43c6b98bc68d5d214dd2e2775a10eb007dee034c005766fbc310005147bfb788": SOURCE_SG3_AUGMENT,
}
_CLASS_LINE = re.compile(r"^class[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*[(:]", re.MULTILINE)
_STYLEGAN2_CLASSES = {"MappingNetwork", "SynthesisLayer", "SynthesisBlock", "SynthesisNetwork", "Generator",
                      "DiscriminatorBlock", "DiscriminatorEpilogue", "Discriminator"}
_STYLEGAN3_CLASSES = {"MappingNetwork", "SynthesisInput", "SynthesisLayer", "SynthesisNetwork", "Generator"}


def _identify_source(src: str) -> tuple[str, str, bool]:
    """(label, sha256, exact): the label from the sha256 of a released file, else from the `class` lines.

    Published snapshots were often made with NVIDIA's internal copies, whose hashes are unknown, so the
    text decides then; `exact` says whether the hash matched. The text is only searched, never compiled.
    """
    sha = hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest()
    if sha in _KNOWN_SOURCES:
        return _KNOWN_SOURCES[sha], sha, True
    classes = set(_CLASS_LINE.findall(src))
    if _STYLEGAN3_CLASSES <= classes:
        label = SOURCE_SG3_NETWORKS_STYLEGAN3
    elif _STYLEGAN2_CLASSES <= classes:
        # stylegan3's copy of the StyleGAN2 networks added update_emas / fused_modconv_default
        if "fused_modconv_default" in src or "update_emas" in src:
            label = SOURCE_SG3_NETWORKS_STYLEGAN2
        elif "skip_w_avg_update" in src:
            label = SOURCE_ADA_NETWORKS
        else:
            label = SOURCE_UNKNOWN
    elif "AugmentPipe" in classes:
        label = SOURCE_ADA_AUGMENT  # the two repositories' augment.py differ only in comments
    else:
        label = SOURCE_UNKNOWN
    return label, sha, False


# --- records -------------------------------------------------------------------------------------------------


@dataclass
class ModuleRecord:
    """One NVIDIA network module (torch.nn.Module), as plain data. No NVIDIA code was run to make it."""

    class_name: str  # e.g. "Generator", "SynthesisLayer"
    source: str  # SOURCE_* label of the NVIDIA file that defined the class, or "unknown"
    source_sha256: str  # of the embedded source, which is kept only as this hash
    init_args: tuple
    init_kwargs: dict  # plain dicts all the way down (EasyDict -> dict)
    attributes: dict  # the other plain attributes (conv_clamp, resolution, up, weight_gain as float, ...)
    parameters: dict  # name -> np.ndarray, in order
    buffers: dict  # persistent buffers, in order
    non_persistent_buffers: dict
    children: dict  # name -> ModuleRecord, in order
    source_exact: bool = False  # the source's sha256 is that of a released NVIDIA file (else: told by its text)

    def state_dict(self) -> dict:
        """torch's `Module.state_dict()`: the same keys in the same order ("mapping.fc0.weight", ...)."""
        out = {}
        self._collect(out, "")
        return out

    def _collect(self, out, prefix):
        for name, array in self.parameters.items():
            out[prefix + name] = array
        for name, array in self.buffers.items():
            out[prefix + name] = array
        for name, child in self.children.items():
            child._collect(out, prefix + name + ".")

    def num_parameters(self) -> int:
        """Elements in all parameters, each counted once (as `sum(p.numel() for p in module.parameters())`)."""
        seen, total, stack, modules = set(), 0, [self], set()
        while stack:
            module = stack.pop()
            if id(module) in modules:
                continue
            modules.add(id(module))
            for array in module.parameters.values():
                if id(array) not in seen:
                    seen.add(id(array))
                    total += array.size
            stack.extend(module.children.values())
        return total


@dataclass
class Snapshot:
    path: str
    networks: dict  # "G", "D", "G_ema" (all present), "augment_pipe" when the file has one
    training_set_kwargs: dict | None
    other_keys: list = field(default_factory=list)  # other top-level keys, for the import summary


# --- the loader's own intermediate objects ---------------------------------------------------------------------


class _Bad(Exception):
    """Something malformed inside the file; read_snapshot adds the path."""


class _Opaque:
    """Base of the intermediate objects: a BUILD opcode aimed at one is an error, not an update."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Bad(f"the pickle tries to set the state of a {self._what}")

    _what = "value"


class _Dtype(_Opaque):
    __slots__ = ("dtype",)
    _what = "numpy dtype in an unexpected way"

    def __init__(self, dtype):
        self.dtype = dtype

    def __setstate__(self, state):
        # numpy's dtype state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                and state[1] in ("<", ">", "|", "=") and state[2] is None and state[3] is None
                and state[4] is None and all(_is_int(x) for x in state[5:8])
                and (len(state) == 8 or state[8] is None)):
            raise _Bad(f"unexpected numpy dtype state {_short(state)}")
        if state[1] == ">":
            self.dtype = self.dtype.newbyteorder(">")


class _Storage(_Opaque):
    __slots__ = ("array", "type_name")
    _what = "tensor storage"

    def __init__(self, array, type_name):
        self.array = array  # 1-D, read-only, over the blob
        self.type_name = type_name


class _Tensor(_Opaque):
    __slots__ = ("array", "is_parameter")
    _what = "tensor"

    def __init__(self, array, is_parameter):
        self.array = array
        self.is_parameter = is_parameter


class _Persistent(_Opaque):
    __slots__ = ("class_name", "source", "sha256", "exact", "state")
    _what = "network module"

    def __init__(self, class_name, source, sha256, exact, state):
        self.class_name, self.source, self.sha256, self.exact, self.state = class_name, source, sha256, exact, state


class _PlainDict(dict):
    """OrderedDict / EasyDict stand-in. No __dict__, so BUILD can only give it an empty state."""

    __slots__ = ()

    def __setstate__(self, state):
        if state:
            raise _Bad("the pickle tries to set attributes on a dict")


class _EasyDict(_PlainDict):
    __slots__ = ()


class _StorageType(_Opaque):
    """A storage type name such as torch.FloatStorage; not callable."""

    __slots__ = ("name", "dtype")
    _what = "storage type"

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype


class _StorageRef(_Opaque):
    __slots__ = ("type", "key", "numel")
    _what = "storage reference"

    def __init__(self, type_, key, numel):
        self.type, self.key, self.numel = type_, key, numel


# --- bounds, and the opcode scan made before anything is unpickled -------------------------------------------
#
# A real snapshot never comes near these. They are set from NVIDIA's largest published configurations (1024 px
# StyleGAN2 and StyleGAN3 snapshots holding G, D, G_ema and augment_pipe) with a margin of ten or more, and
# docs/security.md derives each one. The fixtures: small64.pkl (14.5 MB) has 23,798 opcodes, 5,276 memo
# entries, about 6,500 containers and call results, nesting 32 deep, a largest string of 37,391 characters and
# a largest bytes object of 1,048,830; a 1024 px snapshot has about four times the opcodes and at most a
# 16.8 MB tensor (D's b4.fc.weight, 512 x 8192 float32).
MAX_OPCODES = 1_000_000  # opcodes in one pickle
MAX_CONTAINERS = 250_000  # tuples, lists, dicts, sets and call results it makes (the C unpickler's memory)
MAX_MEMO = 250_000  # memo entries, and the largest memo index (the C unpickler sizes its memo by the index)
MAX_NESTING = 128  # nesting depth of any value, and of MARKs
MAX_HASH_VISITS = 10_000  # elements that hashing one tuple or frozenset visits (tuples do not cache their hash)
MAX_STRING = 16 << 20  # characters in one string (NVIDIA's embedded sources are about 40 KB)
MAX_BYTES = 256 << 20  # bytes in one bytes object (one tensor's storage)
MAX_FRAME = 16 << 20  # a protocol 4 frame (the picklers make them about 64 KB)
MAX_INT_BYTES = 32  # an integer's LONG1/LONG4 bytes (torch's magic number has 10)
MAX_GLOBAL_NAME = 512  # characters of a GLOBAL opcode's module or name
MAX_VISITS = 100_000  # values visited turning the loaded objects into records (small64: 2,896)
COPY_MARGIN = 1 << 20  # copies of non-contiguous tensors may total the file's size plus this


class _Truncated(_Bad):
    """The pickle ends before its STOP opcode."""


_LEAF = (0, 1)  # (nesting depth, elements hashing visits) of a scalar, string or bytes object

# opcode -> (what it does, the size of its argument). Only opcodes that picklers write at protocol 2-5 are known;
# the text opcodes of protocol 0 and 1 and the rarer ones (extension registry, out-of-band buffers, NEWOBJ_EX,
# DUP) are refused by name, as no network pickle has them.
_OPCODES = {
    ord("N"): ("leaf", 0), 0x88: ("leaf", 0), 0x89: ("leaf", 0),  # NONE, NEWTRUE, NEWFALSE
    ord("J"): ("leaf", 4), ord("K"): ("leaf", 1), ord("M"): ("leaf", 2), ord("G"): ("leaf", 8),  # BININT*, BINFLOAT
    0x8A: ("long", 1), 0x8B: ("long", 4),  # LONG1, LONG4
    0x8C: ("string", 1), ord("X"): ("string", 4), 0x8D: ("string", 8),  # SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
    ord("U"): ("bytes", 1), ord("T"): ("bytes", 4),  # SHORT_BINSTRING, BINSTRING (Python 2 str)
    ord("C"): ("bytes", 1), ord("B"): ("bytes", 4), 0x8E: ("bytes", 8), 0x96: ("bytes", 8),  # *BINBYTES*, BYTEARRAY8
    ord(")"): ("empty_tuple", 0), ord("]"): ("empty", 0), ord("}"): ("empty", 0), 0x8F: ("empty", 0),
    0x85: ("tuple_n", 1), 0x86: ("tuple_n", 2), 0x87: ("tuple_n", 3),  # TUPLE1-3
    ord("t"): ("tuple_mark", 0), 0x91: ("tuple_mark", 0),  # TUPLE, FROZENSET
    ord("l"): ("container_mark", 0), ord("d"): ("container_mark", 0),  # LIST, DICT
    ord("a"): ("add", 1), ord("s"): ("add", 2),  # APPEND, SETITEM
    ord("e"): ("add_mark", 0), ord("u"): ("add_mark", 0), 0x90: ("add_mark", 0),  # APPENDS, SETITEMS, ADDITEMS
    ord("("): ("mark", 0), ord("0"): ("pop", 0), ord("1"): ("pop_mark", 0),
    ord("q"): ("put", 1), ord("r"): ("put", 4), 0x94: ("memoize", 0),  # BINPUT, LONG_BINPUT, MEMOIZE
    ord("h"): ("get", 1), ord("j"): ("get", 4),  # BINGET, LONG_BINGET
    ord("c"): ("global", 0), 0x93: ("stack_global", 0),
    ord("R"): ("call", 2), 0x81: ("call", 2), ord("Q"): ("call", 1), ord("b"): ("build", 0),  # REDUCE, NEWOBJ, ...
    0x80: ("proto", 1), 0x95: ("frame", 8), ord("."): ("stop", 0),
}
_REFUSED_OPCODES = {
    ord("I"): "INT", ord("L"): "LONG", ord("F"): "FLOAT", ord("S"): "STRING", ord("V"): "UNICODE", ord("p"): "PUT",
    ord("g"): "GET", ord("P"): "PERSID", ord("i"): "INST", ord("o"): "OBJ", ord("2"): "DUP", 0x82: "EXT1",
    0x83: "EXT2", 0x84: "EXT4", 0x92: "NEWOBJ_EX", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
}
_UINT = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}
_INT4 = struct.Struct("<i")


def _hash_visits(node):
    # a tuple node's count; mutable containers and call results stop (or end) a hash at once
    return node[1] if type(node) is tuple else 1


def _scan_pickle(data, start: int, end: int, stats: dict | None = None) -> int:
    """Walk the opcodes of the one pickle at data[start:end] (bytes, or an mmap of the file) and check them
    against the bounds above, building nothing; returns the offset after its STOP. _Bad names the first
    bound passed and where; _Truncated when the data ends first.

    Every value is a node: (depth, hash visits) for scalars and immutable tuples, [depth, 1] for what can
    still change (lists, dicts, sets, the results of calls, which APPEND, SETITEM and BUILD may fill later).
    A memo entry is the same node object, so a shared value is counted once. `stats`, when given, is
    filled with what the pickle used (opcodes, containers, memo entries, deepest nesting, longest string
    and bytes object), to compare real snapshots with the bounds."""
    return _Scan(data, start, end).run(stats)


class _Scan:
    """The state of one `_scan_pickle` walk (the stack of nodes, the open MARKs, the memo, the counts) and
    one method per family of opcodes (the kinds of `_OPCODES`). A method gets the opcode's kind, its byte
    offset `at`, the size of its argument (read from `pos`) and `fence`, where the innermost MARK's items
    start on the stack (0 without one)."""

    def __init__(self, data, start: int, end: int):
        self.data, self.pos, self.end = data, start, end
        self.stack, self.marks, self.memo = [], [], {}
        self.ops = self.containers = self.deepest = self.longest_string = self.longest_bytes = 0

    def run(self, stats: dict | None) -> int:
        handlers = self.HANDLERS
        while True:
            at, kind, size = self.next_opcode()
            fence = self.marks[-1] if self.marks else 0
            if kind == "stop":
                self.top(fence, at)
                if stats is not None:
                    stats.update(opcodes=self.ops, containers=self.containers, memo=len(self.memo),
                                 nesting=self.deepest, string=self.longest_string, bytes=self.longest_bytes)
                return self.pos
            handlers[kind](self, kind, at, size, fence)

    def next_opcode(self) -> tuple[int, str, int]:
        """(offset, kind, argument size) of the opcode at `pos`, which moves past it; refused when unknown."""
        if self.pos >= self.end:
            raise _Truncated()
        at = self.pos
        code = self.data[at]
        self.pos += 1
        self.ops += 1
        if self.ops > MAX_OPCODES:
            raise _Bad(f"it has more than {MAX_OPCODES:,} opcodes, which no network file needs")
        kind, size = _OPCODES.get(code, (None, 0))
        if kind is None:
            name = _REFUSED_OPCODES.get(code)
            if name is None:
                raise _Bad(f"byte {at} holds {bytes([code])!r}, which is no pickle opcode")
            raise _Bad(f"it uses the opcode {name} (byte {at}), which network pickles of protocol 2-5 never use")
        return at, kind, size

    # -- reading arguments and moving values ---------------------------------------------------------------

    def skip(self, count: int) -> None:
        self.pos += count
        if self.pos > self.end:
            raise _Truncated()

    def read(self, number: struct.Struct) -> int:
        if self.pos + number.size > self.end:
            raise _Truncated()
        value = number.unpack_from(self.data, self.pos)[0]
        self.pos += number.size
        return value

    @staticmethod
    def underflow(at: int) -> _Bad:
        return _Bad(f"its stack underflows at byte {at}")

    def top(self, fence: int, at: int):
        """The node on top of the stack, above the innermost MARK."""
        if len(self.stack) <= fence:
            raise self.underflow(at)
        return self.stack[-1]

    def take(self, count: int, fence: int, at: int) -> list:
        """The top `count` nodes, removed; none of them below the innermost MARK."""
        stack = self.stack
        if len(stack) - count < fence:
            raise self.underflow(at)
        items = stack[len(stack) - count:]
        del stack[len(stack) - count:]
        return items

    def take_to_mark(self, fence: int, at: int) -> list:
        """The nodes above the innermost MARK, removed with the MARK."""
        if not self.marks:
            raise _Bad(f"byte {at} needs a MARK that is not there")
        items = self.stack[fence:]
        del self.stack[fence:]
        self.marks.pop()
        return items

    @staticmethod
    def nesting(items: list, at: int) -> int:
        """The depth of a value holding `items`, checked against MAX_NESTING."""
        depth = 1 + max((item[0] for item in items), default=0)
        if depth > MAX_NESTING:
            raise _Bad(f"a value is nested more than {MAX_NESTING} levels deep (byte {at}), which no "
                       f"network file needs")
        return depth

    # -- one method per family of opcodes ------------------------------------------------------------------

    def leaf(self, kind, at, size, fence):  # None, booleans, fixed-size integers and floats
        self.skip(size)
        self.stack.append(_LEAF)

    def sized(self, kind, at, size, fence):  # string, bytes, long: a length, then that many bytes
        length = self.read(_INT4 if kind == "long" and size == 4 else _UINT[size])
        if length < 0:
            raise _Bad(f"byte {at} starts an integer of negative length")
        bound = MAX_STRING if kind == "string" else MAX_BYTES if kind == "bytes" else MAX_INT_BYTES
        if length > bound:
            what = {"string": "a string of", "bytes": "a bytes object of", "long": "an integer of"}[kind]
            raise _Bad(f"byte {at} starts {what} {length:,} bytes, more than the {bound:,} a network file needs")
        self.skip(length)
        if kind == "string":
            self.longest_string = max(self.longest_string, length)
        elif kind == "bytes":
            self.longest_bytes = max(self.longest_bytes, length)
        self.stack.append(_LEAF)

    def memo_entry(self, kind, at, size, fence):  # get, put: a memo index
        index = self.read(_UINT[size])
        if index >= MAX_MEMO:
            raise _Bad(f"byte {at} uses memo entry {index:,}; a network file needs fewer than {MAX_MEMO:,}")
        if kind == "put":
            self.memo[index] = self.top(fence, at)
            return
        node = self.memo.get(index)
        if node is None:
            raise _Bad(f"byte {at} uses memo entry {index:,} before it is defined")
        self.stack.append(node)

    def memoize(self, kind, at, size, fence):
        node = self.top(fence, at)
        if len(self.memo) >= MAX_MEMO:
            raise _Bad(f"it has more than {MAX_MEMO:,} memo entries, which no network file needs")
        self.memo[len(self.memo)] = node

    def container(self, kind, at, size, fence):  # a new tuple, list, dict, set or call result
        self.containers += 1
        if self.containers > MAX_CONTAINERS:
            raise _Bad(f"it makes more than {MAX_CONTAINERS:,} containers and objects, which no network file needs")
        if kind == "empty_tuple":
            node = (1, 1)
        elif kind == "empty":
            node = [1, 1]
        else:
            items = self.take(size, fence, at) if kind in ("tuple_n", "call") else self.take_to_mark(fence, at)
            depth = self.nesting(items, at)
            self.deepest = max(self.deepest, depth)
            if kind in ("tuple_n", "tuple_mark"):
                visits = 1 + sum(_hash_visits(item) for item in items)
                if visits > MAX_HASH_VISITS:
                    raise _Bad(f"a tuple or frozenset (byte {at}) holds more than {MAX_HASH_VISITS:,} values, "
                               f"counting shared ones each time: hashing it would not end")
                node = (depth, visits)
            else:
                node = [depth, 1]
        self.stack.append(node)

    def add(self, kind, at, size, fence):  # APPEND(S), SETITEM(S), ADDITEMS, BUILD: items into the value below
        if kind == "add_mark":
            items = self.take_to_mark(fence, at)
        else:
            items = self.take(1 if kind == "build" else size, fence, at)
        target = self.top(self.marks[-1] if self.marks else 0, at)
        if type(target) is list and items:
            depth = self.nesting(items, at)
            if depth > target[0]:
                target[0] = depth
                self.deepest = max(self.deepest, depth)

    def mark(self, kind, at, size, fence):
        if len(self.marks) >= MAX_NESTING:
            raise _Bad(f"more than {MAX_NESTING} MARKs are open at byte {at}, which no network file needs")
        self.marks.append(len(self.stack))

    def pop(self, kind, at, size, fence):
        if len(self.stack) > fence:
            self.stack.pop()
        elif self.marks:
            self.marks.pop()
        else:
            raise self.underflow(at)

    def pop_mark(self, kind, at, size, fence):
        self.take_to_mark(fence, at)

    def global_names(self, kind, at, size, fence):  # GLOBAL: a module and a name, each ended by a newline
        for _ in range(2):
            stop = self.data.find(b"\n", self.pos, min(self.end, self.pos + MAX_GLOBAL_NAME + 1))
            if stop < 0:
                if self.end - self.pos <= MAX_GLOBAL_NAME:
                    raise _Truncated()
                raise _Bad(f"byte {at} names a global longer than {MAX_GLOBAL_NAME} characters")
            self.pos = stop + 1
        self.stack.append(_LEAF)

    def stack_global(self, kind, at, size, fence):
        self.take(2, fence, at)
        self.stack.append(_LEAF)

    def proto(self, kind, at, size, fence):
        self.skip(1)

    def frame(self, kind, at, size, fence):
        length = self.read(_UINT[8])
        if length > MAX_FRAME:
            raise _Bad(f"byte {at} starts a frame of {length:,} bytes, more than the {MAX_FRAME:,} a network "
                       f"file needs")
        if self.pos + length > self.end:
            raise _Truncated()

    HANDLERS = {"leaf": leaf, "string": sized, "bytes": sized, "long": sized, "get": memo_entry, "put": memo_entry,
                "memoize": memoize, "empty": container, "empty_tuple": container, "tuple_n": container,
                "tuple_mark": container, "container_mark": container, "call": container, "add": add,
                "add_mark": add, "build": add, "mark": mark, "pop": pop, "pop_mark": pop_mark,
                "global": global_names, "stack_global": stack_global, "proto": proto, "frame": frame}


# --- what each allowed global becomes ---------------------------------------------------------------------------

_PERSISTENCE_VERSION = 6  # torch_utils.persistence._version in both stylegan2-ada-pytorch and stylegan3
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _reconstruct_persistent_obj(meta, *, sources):
    # Stands in for torch_utils.persistence._reconstruct_persistent_obj, which would exec meta['module_src'].
    # `sources` is the reading's cache: the same source string is identified (hashed) once.
    if not isinstance(meta, dict) or not {"type", "version", "module_src", "class_name", "state"} <= meta.keys():
        raise _Bad(f"a network module's description is {_short(meta)}, not the persistence dict")
    if meta["type"] != "class":
        raise _Bad(f"a network module has persistence type {_short(meta['type'])}; only 'class' is known")
    if meta["version"] != _PERSISTENCE_VERSION or type(meta["version"]) is not int:
        raise _Bad(f"a network module has persistence version {_short(meta['version'])}; "
                   f"NVIDIA's code writes {_PERSISTENCE_VERSION}")
    src, class_name, state = meta["module_src"], meta["class_name"], meta["state"]
    if (not isinstance(src, str) or not isinstance(class_name, str) or not _IDENTIFIER.match(class_name)
            or len(class_name) > 200):
        raise _Bad(f"a network module has class name {_short(class_name)}")
    if not isinstance(state, dict):
        raise _Bad(f"network module {class_name} has state {_short(state)}, not a dict")
    known = sources.get(src)
    if known is None:
        known = sources[src] = _identify_source(src)
    return _Persistent(class_name, *known, state)


def _is_int(value):
    return type(value) is int


def _check_hooks(hooks):
    # torch pickles an empty OrderedDict here; real hooks would be functions, i.e. refused globals
    if not isinstance(hooks, dict) or hooks:
        raise _Bad(f"a tensor has backward hooks {_short(hooks)}")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None, *,
                       reading):
    # Stands in for torch._utils._rebuild_tensor_v2 (6 arguments in old torch, 7 in newer).
    if not isinstance(storage, _Storage):
        raise _Bad(f"a tensor's storage is {_short(storage)}")
    if not isinstance(requires_grad, bool):
        raise _Bad("a tensor's requires_grad is not a bool")
    _check_hooks(backward_hooks)
    if metadata is not None and metadata != {}:
        raise _Bad(f"a tensor has metadata {_short(metadata)}")
    return _Tensor(_tensor_view(storage.array, storage_offset, size, stride, reading), False)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    # Stands in for torch._utils._rebuild_parameter.
    if not isinstance(data, _Tensor) or not isinstance(requires_grad, bool):
        raise _Bad(f"a parameter wraps {_short(data)}, not a tensor")
    _check_hooks(backward_hooks)
    return _Tensor(data.array, True)


_MAX_DIMS = 32


def _tensor_view(flat, offset, size, stride, reading):
    """The array torch would show for (offset, size, stride) over a 1-D storage, after checking every bound. A
    view that is not contiguous is copied, within the reading's budget for copies."""
    if not (_is_int(offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) <= _MAX_DIMS and all(map(_is_int, size)) and all(map(_is_int, stride))):
        raise _Bad(f"a tensor has offset {_short(offset)}, size {_short(size)}, stride {_short(stride)}")
    if offset < 0 or min(size, default=0) < 0 or min(stride, default=0) < 0:
        raise _Bad(f"a tensor has a negative offset, size or stride ({offset}, {_short(size)}, {_short(stride)})")
    numel = flat.size
    count = math.prod(size)  # Python ints: no overflow on hostile sizes
    if count == 0:
        if offset > numel:
            raise _Bad(f"an empty tensor starts at element {offset} of a storage of {numel} elements")
        return np.zeros(size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= numel:
        raise _Bad(f"a tensor (offset {offset}, size {_short(size)}, stride {_short(stride)}) reaches element "
                   f"{last} of a storage of {numel} elements: it reaches beyond its storage")
    if count > numel:
        # only overlapping (expanded) views show more elements than they hold; copying one could take any memory
        raise _Bad(f"a tensor of size {_short(size)} shows {count} elements of a storage of {numel}; "
                   f"overlapping tensors are not supported")
    expected, contiguous = 1, True
    for n, s in zip(reversed(size), reversed(stride)):
        if n != 1 and s != expected:
            contiguous = False
            break
        expected *= n
    if contiguous:
        return flat[offset:offset + count].reshape(size)
    # strides are checked above (all elements lie inside the storage); copy to own C-order memory
    reading.copy(count * flat.itemsize)
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * item for s in stride],
                                           writeable=False)
    out = np.array(view, order="C")
    out.flags.writeable = False
    return out


# Storage types NVIDIA's networks use. All their parameters and buffers are floating point (float32 in
# snapshots; float16 only if someone pickled a module after .half(), float64 never in practice but harmless).
# No NVIDIA StyleGAN2/3 module registers an integer or bool tensor, so integer storages are not accepted.
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "DoubleStorage": np.dtype("<f8"),
}
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER, first pickle of a legacy torch.save
_TORCH_PROTOCOL = 1001


class _StorageUnpickler(pickle.Unpickler):
    """The small pickles inside one storage's legacy torch.save stream: only storage type names are known."""

    def __init__(self, file):
        super().__init__(file)
        self.refs = []

    def find_class(self, module, name):
        # torch.cuda.* only in files pickled straight from the GPU: the data was written from a CPU copy
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module in ("torch", "torch.cuda") and name.endswith("Storage") and _IDENTIFIER.match(name):
            raise _Bad(f"a tensor's storage has type {module}.{name}; NVIDIA's networks hold only float tensors "
                       f"(supported: torch.FloatStorage, torch.HalfStorage, torch.DoubleStorage)")
        raise RefusedPickleError(f"refusing NVIDIA pickle: a tensor's storage references {_global_name(module, name)}, "
                                 f"which a network file never needs")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel, view_metadata), as torch's legacy save writes it
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and isinstance(pid[3], str) and _is_int(pid[4]) and pid[4] >= 0):
            raise _Bad(f"a tensor's storage has persistent id {_short(pid)}")
        if pid[5] is not None:
            raise _Bad("a tensor's storage is a view of another storage, which only early torch versions wrote")
        ref = _StorageRef(pid[1], pid[2], pid[4])
        self.refs.append(ref)
        return ref


def _load_from_bytes(blob):
    # Stands in for torch.storage._load_from_bytes, which would torch.load (unpickle) the blob.
    if not isinstance(blob, (bytes, bytearray)):
        raise _Bad(f"a tensor's storage is {_short(blob)}, not bytes")
    if blob[:4] == b"PK\x03\x04":
        raise _Bad("a tensor's storage is in torch's zip format; NVIDIA's snapshots store each storage "
                   "in torch's legacy format, which is the only one read here")
    stream = io.BytesIO(blob)  # shares the bytes; no copy

    def next_pickle(unpickler=None):
        try:
            _scan_pickle(blob, stream.tell(), len(blob))  # bounds first: the C unpickler trusts its input
            return (unpickler or _StorageUnpickler(stream)).load()
        except _Truncated:
            raise _Bad("a tensor's storage stream is damaged (it stops inside one of its pickles)") from None
        except (NvidiaPickleError, _Bad) as exc:
            if isinstance(exc, _Bad) and not str(exc).startswith("a tensor's storage"):
                raise _Bad(f"a tensor's storage stream is damaged ({exc})") from None
            raise
        except Exception as exc:
            raise _Bad(f"a tensor's storage stream is damaged ({_exception_text(exc)})") from None

    magic = next_pickle()
    if not _is_int(magic) or magic != _TORCH_MAGIC:
        raise _Bad("a tensor's storage does not start with torch's magic number")
    if next_pickle() != _TORCH_PROTOCOL:
        raise _Bad("a tensor's storage has an unknown torch serialization protocol")
    sys_info = next_pickle()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise _Bad("a tensor's storage was not written little-endian")  # torch writes data in native order
    unpickler = _StorageUnpickler(stream)
    ref = next_pickle(unpickler)
    if not isinstance(ref, _StorageRef) or len(unpickler.refs) != 1:
        raise _Bad("a tensor's storage stream holds something other than one storage")
    keys = next_pickle()
    if keys != [ref.key]:
        raise _Bad("a tensor's storage stream has a key list that does not match its storage")
    start = stream.tell()
    dtype = ref.type.dtype
    need = 8 + ref.numel * dtype.itemsize
    if len(blob) - start != need:
        raise _Bad(f"a tensor's storage holds {len(blob) - start} bytes of data where its header says {need}")
    numel = int.from_bytes(blob[start:start + 8], "little", signed=True)
    if numel != ref.numel:
        raise _Bad(f"a tensor's storage says {numel} elements in one place and {ref.numel} in another")
    array = np.frombuffer(blob, dtype, ref.numel, start + 8)
    array.flags.writeable = False  # already so for bytes; also for a protocol 5 bytearray
    return _Storage(array, ref.type.name)


class _Reading:
    """What one reading of a file keeps: the identified sources (each source string hashed once) and the
    bytes copied for tensors that are not contiguous in their storage. A real snapshot copies each tensor
    at most once, so the copies never exceed the file's size; the same storage viewed many times would."""

    def __init__(self, file_size):
        self.sources = {}
        self.copied = 0
        self.copy_budget = file_size + COPY_MARGIN

    def copy(self, nbytes):
        self.copied += nbytes
        if self.copied > self.copy_budget:
            raise _Bad(f"its tensors would be copied to more than {self.copy_budget:,} bytes, more than the file "
                       f"holds: one storage viewed many times over?")


def _ordered_dict(*args):
    # Stands in for collections.OrderedDict (plain dicts keep order).
    if len(args) > 1:
        raise _Bad("OrderedDict with more than one argument")
    return _PlainDict(*args)


def _make_set(items=()):
    # Stands in for builtins.set, which protocol 2 and 3 pickles use for `_non_persistent_buffers_set`.
    if not isinstance(items, list):
        raise _Bad(f"a set is made from {_short(items)}, not a list")
    return set(items)


def _codecs_encode(text, encoding="utf-8"):
    # Stands in for _codecs.encode, which protocol 2 pickles use for every bytes object: latin-1 only (another
    # codec, e.g. zlib, could expand without bound).
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Bad(f"bytes encoded as {_short(encoding)}; protocol 2 pickles use latin1")
    return text.encode("latin-1")


_SIMPLE_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


def _numpy_dtype(obj, align=False, copy=False):
    # Stands in for numpy.dtype: simple numeric dtypes only, as the type of a pickled numpy scalar.
    if not isinstance(obj, str) or obj not in _SIMPLE_DTYPES:
        raise _Bad(f"a numpy dtype {_short(obj)}; only simple numeric dtypes are read")
    return _Dtype(np.dtype(obj))


def _numpy_scalar(dtype, data=None):
    # Stands in for numpy.(_)core.multiarray.scalar: a Python float/int/bool from (dtype, raw bytes).
    if not isinstance(dtype, _Dtype) or not isinstance(data, bytes) or len(data) != dtype.dtype.itemsize:
        raise _Bad(f"a numpy scalar of {_short(dtype)} from {_short(data)}")
    return np.frombuffer(data, dtype.dtype)[0].item()


# Every global NVIDIA's snapshots reference, and what it becomes (see each function for why it is needed).
_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): _ordered_dict,
    ("dnnlib.util", "EasyDict"): _EasyDict,  # a class: pickle makes EasyDicts with NEWOBJ
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,  # numpy 2
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,  # numpy 1, as NVIDIA's published files
    ("numpy", "dtype"): _numpy_dtype,
    ("builtins", "set"): _make_set,  # protocol 3 (Python <= 3.7) has no set opcode
    ("__builtin__", "set"): _make_set,  # protocol 2 writes Python 2 names
    ("_codecs", "encode"): _codecs_encode,  # protocol 2 has no bytes opcode
}

_NETWORK_MODULES = ("training.networks", "training.networks_stylegan2", "training.networks_stylegan3",
                    "training.augment")
_OS_MODULES = ("posix", "nt")


def _global_name(module, name):
    text = f"{module}.{name}"
    if not re.fullmatch(r"[A-Za-z0-9_.<>]{1,200}", text):  # keep a hostile name to one printable line
        text = _short(module) + "." + _short(name)
    if module in _OS_MODULES:
        text += f" (os.{name})"
    return text


class _TF1Format(Exception):
    pass


class _SnapshotUnpickler(pickle.Unpickler):
    def __init__(self, file, reading):
        super().__init__(file)
        self._reading = reading

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is _reconstruct_persistent_obj:
            return functools.partial(found, sources=self._reading.sources)
        if found is _rebuild_tensor_v2:
            return functools.partial(found, reading=self._reading)
        if found is not None:
            return found
        if module == "dnnlib.tflib.network" and name == "Network":
            raise _TF1Format()
        if module in _NETWORK_MODULES:
            raise RefusedPickleError(
                f"refusing NVIDIA pickle: it references the class {_global_name(module, name)} by name, which would "
                f"run this machine's copy of that code; NVIDIA's snapshots embed each network's source through "
                f"torch_utils.persistence instead")
        raise RefusedPickleError(f"refusing NVIDIA pickle: it references {_global_name(module, name)}, "
                                 f"which a network file never needs")

    def persistent_load(self, pid):
        raise _Bad("it uses persistent ids, as torch.save's own pickles do; NVIDIA's snapshots never do")


# --- from loaded objects to records ------------------------------------------------------------------------------

_MAX_DEPTH = 100
# torch.nn.Module bookkeeping in a module's state (older torch versions leave some of the hook keys out)
_TORCH_INTERNAL = {
    "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "_init_args", "_init_kwargs",
    "_backward_hooks", "_backward_pre_hooks", "_is_full_backward_hook", "_forward_hooks",
    "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
}


class _Converter:
    """Loaded objects -> records. Plain values are copied as trees, every value visited counted against
    MAX_VISITS, so a value shared exponentially many times over (each level holding the one below twice)
    ends in an error after a bounded walk instead of a walk that never ends. A module is a child of at most
    one module: NVIDIA's networks share none, and a tree of records keeps `state_dict()` linear."""

    def __init__(self):
        self.records = {}  # id(_Persistent) -> ModuleRecord: a network named twice at the top stays one record
        self.parents = {}  # id(_Persistent) -> whether a module or value already holds it
        self.active = set()  # ids on the current path: a cycle is an error, not endless recursion
        self.visits = 0

    def _visit(self):
        self.visits += 1
        if self.visits > MAX_VISITS:
            raise _Bad(f"it holds more than {MAX_VISITS:,} values (shared ones counted each time they are used), "
                       f"which no network file does")

    def module(self, obj, depth=0, child=False):
        key = id(obj)
        self._visit()
        if child:
            if self.parents.get(key):
                raise _Bad(f"network module {obj.class_name} is held by more than one module; NVIDIA's networks "
                           f"share none")
            self.parents[key] = True
        if key in self.records:
            return self.records[key]
        if key in self.active or depth > _MAX_DEPTH:
            raise _Bad(f"network module {obj.class_name} contains itself or is nested too deeply")
        self.active.add(key)
        state = obj.state
        name = obj.class_name
        for required in ("_parameters", "_buffers", "_modules"):
            if not isinstance(state.get(required), dict):
                raise _Bad(f"network module {name} has no {required} dict")
        non_persistent = state.get("_non_persistent_buffers_set", set())
        if not isinstance(non_persistent, (set, frozenset)):
            raise _Bad(f"network module {name} has a _non_persistent_buffers_set that is not a set")
        attributes = {}
        parameters = self._tensors(state["_parameters"], name, "parameter", attributes)
        buffers = self._tensors(state["_buffers"], name, "buffer", attributes)
        persistent = {k: v for k, v in buffers.items() if k not in non_persistent}
        transient = {k: v for k, v in buffers.items() if k in non_persistent}
        children = {}
        for child_name, child in state["_modules"].items():
            if not isinstance(child_name, str) or not _IDENTIFIER.match(child_name) or len(child_name) > 200:
                raise _Bad(f"network module {name} has a child named {_short(child_name)}")
            if child is None:
                attributes[child_name] = None
            elif isinstance(child, _Persistent):
                children[child_name] = self.module(child, depth + 1, child=True)
            else:
                raise _Bad(f"network module {name}'s child {child_name} is {_short(child)}, not an NVIDIA module")
        init_args = self.plain(state.get("_init_args", ()), depth)
        init_kwargs = self.plain(state.get("_init_kwargs", {}), depth)
        if not isinstance(init_args, tuple) or not isinstance(init_kwargs, dict):
            raise _Bad(f"network module {name} has malformed constructor arguments")
        for key_, value in state.items():
            if key_ not in _TORCH_INTERNAL:
                attributes[self.plain(key_, depth)] = self.plain(value, depth)
        record = ModuleRecord(
            class_name=name, source=obj.source, source_sha256=obj.sha256, init_args=init_args,
            init_kwargs=init_kwargs, attributes=attributes, parameters=parameters, buffers=persistent,
            non_persistent_buffers=transient, children=children, source_exact=obj.exact)
        self.active.discard(key)
        self.records[key] = record
        return record

    @staticmethod
    def _tensors(entries, module_name, kind, attributes):
        out = {}
        for name, value in entries.items():
            if not isinstance(name, str) or not _IDENTIFIER.match(name) or len(name) > 200:
                raise _Bad(f"network module {module_name} has a {kind} named {_short(name)}")
            if value is None:
                attributes[name] = None  # registered as None: torch's state_dict leaves it out
            elif isinstance(value, _Tensor):
                out[name] = value.array
            else:
                raise _Bad(f"{kind} {name} of network module {module_name} is {_short(value)}, not a tensor")
        return out

    def plain(self, value, depth=0):
        """Plain Python data: dict/list/tuple/set of numbers, str, bytes, None, arrays, records."""
        self._visit()
        kind = type(value)
        if value is None or kind in (str, int, float, bool, bytes, complex):
            return value
        if depth > _MAX_DEPTH:
            raise _Bad("a value is nested too deeply")
        if isinstance(value, _Persistent):
            return self.module(value, depth + 1, child=True)
        if isinstance(value, _Tensor):
            return value.array
        if isinstance(value, _Dtype):
            return value.dtype
        if isinstance(value, (dict, list, tuple, set, frozenset, bytearray)):
            if kind is bytearray:
                return bytes(value)
            key = id(value)
            if key in self.active:
                raise _Bad("a value contains itself")
            self.active.add(key)
            if isinstance(value, dict):
                out = {self.plain(k, depth + 1): self.plain(v, depth + 1) for k, v in value.items()}
            elif isinstance(value, list):
                out = [self.plain(v, depth + 1) for v in value]
            elif isinstance(value, tuple):
                out = tuple(self.plain(v, depth + 1) for v in value)
            else:
                out = set(self.plain(v, depth + 1) for v in value)
            self.active.discard(key)
            return out
        raise _Bad(f"the pickle holds {_short(value)} where plain data belongs")


# --- reading a file ----------------------------------------------------------------------------------------------

_NETWORK_KEYS = ("G", "D", "G_ema")
_KNOWN_KEYS = ("training_set_kwargs", "G", "D", "G_ema", "augment_pipe")
_MAGICS = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (as Keras .h5 weights)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x1f\x8b", "a gzip file"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
]


def _short(value, limit=80):
    """A one-line repr of at most `limit` characters, never the whole repr of a hostile value (which may be
    huge, or shared exponentially many times over): `errors.short_repr`."""
    if isinstance(value, (_Opaque, np.ndarray)):
        return f"a {type(value).__name__.strip('_')}"
    return short_repr(value, limit)


def _exception_text(exc):
    # KeyError's text is the repr of its key, which may be anything the file made
    text = short_repr(exc.args[0], 80) if isinstance(exc, LookupError) and exc.args else str(exc)[:400]
    return short_repr(f"{type(exc).__name__}: {text}", 160).strip("'\"")


def _describe_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:  # reads only the archive's directory
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a ZIP archive (a damaged one)"
    torch_pickle = next((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), None)
    if torch_pickle is not None:
        return ("a torch.save file (a ZIP archive with " + _short(torch_pickle).strip("'")
                + "), such as a state dict or a model saved with torch.save")
    if names and all(n.endswith(".npy") for n in names):
        return "a NumPy .npz archive"
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        return "a Keras .keras model"
    return "a ZIP archive"


def _not_a_pickle(path, head):
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        what = _describe_zip(path)
    else:
        what = next((text for magic, text in _MAGICS if head.startswith(magic)), None)
        if what is None:
            what = (f"not a Python pickle (it starts with {_short(head[:8])}, not the pickle header b'\\x80' "
                    f"and a protocol 2-5)")
    return NvidiaPickleError(f"{path} is not an NVIDIA network pickle: it is {what}. {SUPPORTED}")


def _or(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _kind(value):
    if isinstance(value, _Persistent):
        return f"a single network module ({value.class_name})"
    if isinstance(value, (_Tensor, _Storage)):
        return "a tensor"
    name = type(value).__name__.strip("_").replace("PlainDict", "dict").replace("EasyDict", "dict")
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _scan_file(file) -> None:
    """`_scan_pickle` over the file's first pickle, through a memory map (the page cache, no copy), or
    over its bytes where the file cannot be mapped."""
    try:
        view = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        file.seek(0)
        data = file.read()
        _scan_pickle(data, 0, len(data))
        return
    with view:
        _scan_pickle(view, 0, len(view))


def read_snapshot(path) -> Snapshot:
    """Read an NVIDIA StyleGAN2-ADA `network-snapshot-*.pkl` safely (see the module docstring).

    Raises NvidiaPickleError (a UserError) with one line saying what the file is, RefusedPickleError when it
    references anything a network file never needs.
    """
    path = Path(os.fspath(path))
    with _open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        _check_head(path, file.read(16))
        file.seek(0)
        data = _unpickle(path, file, size)
        trailing = len(file.read(1))
    if _is_int(data) and data == _TORCH_MAGIC:
        raise NvidiaPickleError(f"{path} is not an NVIDIA network pickle: it is a torch.save file in torch's legacy "
                                f"format (it starts with torch's magic number), such as a state dict. {SUPPORTED}")
    if trailing:
        raise NvidiaPickleError(f"{path} is not an NVIDIA network pickle: more data follows its pickle. {SUPPORTED}")
    try:
        return _snapshot(path, data)
    except NvidiaPickleError:
        raise
    except _Bad as exc:
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: {exc}") from None
    except RecursionError:
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: it is nested too deeply") from None
    except Exception as exc:  # e.g. a dict key that holds a tensor, unhashable once it is an array
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: {_exception_text(exc)}") from exc


def _open_regular(path: Path):
    """`path` opened for reading, after refusing a folder, a missing file and what is not a regular file."""
    if path.is_dir():
        raise NvidiaPickleError(f"{path} is a folder, not a network pickle; give the path of a "
                                f"network-snapshot-*.pkl file")
    if not path.exists():
        raise NvidiaPickleError(f"{path} does not exist")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            raise NvidiaPickleError(f"{path} is not a regular file (a FIFO, socket or device), not a network pickle")
        return open(path, "rb")
    except OSError as exc:
        raise NvidiaPickleError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_head(path: Path, head: bytes) -> None:
    """Refuse a file whose first bytes (`head`) are not those of a pickle of protocol 2 to 5."""
    if not head:
        raise NvidiaPickleError(f"{path} is empty (0 bytes), not an NVIDIA network pickle; "
                                f"a copy or download of it may have failed")
    if head[0] != 0x80:
        raise _not_a_pickle(path, head)
    if len(head) > 1 and not 2 <= head[1] <= 5:
        raise NvidiaPickleError(f"{path} is not an NVIDIA network pickle: it is a pickle of protocol {head[1]}"
                                f" (or not a pickle at all), and NVIDIA's use protocol 2 to 5. {SUPPORTED}")


def _truncated_error(path: Path, size: int) -> NvidiaPickleError:
    return NvidiaPickleError(f"{path} is truncated: its pickle stops before its end ({size:,} bytes); "
                             f"a copy or download of it may have stopped early")


def _unpickle(path: Path, file, size: int):
    """The file's first pickle loaded by `_SnapshotUnpickler`, after `_scan_pickle` checked every bound;
    anything that goes wrong becomes one NvidiaPickleError line."""
    reading = _Reading(size)
    try:
        _scan_file(file)  # every bound before the C unpickler sees a byte
        file.seek(0)
        return _SnapshotUnpickler(file, reading).load()
    except RefusedPickleError:
        raise
    except _Truncated:
        raise _truncated_error(path, size) from None
    except _TF1Format:
        raise NvidiaPickleError(
            f"{path} is in NVIDIA's TensorFlow 1 StyleGAN/StyleGAN2 format (it holds dnnlib.tflib.network."
            f"Network objects), which is not read here; convert it with legacy.py from NVIDIA's "
            f"stylegan2-ada-pytorch repository (python legacy.py --source={path} --dest=converted.pkl) "
            f"and import the converted file") from None
    except _Bad as exc:
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: {exc}") from None
    except (EOFError, pickle.UnpicklingError) as exc:
        if isinstance(exc, EOFError) or "truncated" in str(exc):
            raise _truncated_error(path, size) from None
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: {_exception_text(exc)}") from None
    except RecursionError:
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: it is nested too deeply") from None
    except MemoryError:
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: it asks for more memory "
                                f"than there is") from None
    except NvidiaPickleError:
        raise
    except Exception as exc:  # the C unpickler's own errors on a damaged stream: TypeError, ValueError, ...
        raise NvidiaPickleError(f"{path} is not a readable NVIDIA network pickle: {_exception_text(exc)}") from exc


def _snapshot(path, data):
    if not isinstance(data, dict):
        raise NvidiaPickleError(f"{path} holds {_kind(data)}, not the dict of networks that NVIDIA's "
                                f"network-snapshot-*.pkl files hold (G, D, G_ema, augment_pipe, training_set_kwargs)")
    missing = [key for key in _NETWORK_KEYS if key not in data]
    if missing:
        keys = ", ".join(_short(k, 40) for k in list(data)[:20]) + (", ..." if len(data) > 20 else "")
        raise NvidiaPickleError(
            f"{path} holds a dict with keys {keys or '(none)'} but no {_or(missing)}; NVIDIA's "
            f"network-snapshot-*.pkl files hold G, D and G_ema (and augment_pipe, training_set_kwargs)")
    converter = _Converter()
    networks = {}
    for key in (*_NETWORK_KEYS, "augment_pipe"):
        value = data.get(key)
        if key == "augment_pipe" and value is None:
            continue  # training without augmentation pickles augment_pipe=None
        if not isinstance(value, _Persistent):
            raise NvidiaPickleError(f"{path}: {key} is {_kind(value)}, not a network saved by NVIDIA's code")
        networks[key] = converter.module(value)
    kwargs = converter.plain(data.get("training_set_kwargs"))
    if kwargs is not None and not isinstance(kwargs, dict):
        raise NvidiaPickleError(f"{path}: training_set_kwargs is {_kind(kwargs)}, not a dict")
    other = [key if isinstance(key, str) else _short(key) for key in data if key not in _KNOWN_KEYS]
    return Snapshot(path=str(path), networks=networks, training_set_kwargs=kwargs, other_keys=other)
