"""TFRecord files of `tf.train.Example` records, written (and counted) without importing TensorFlow.

Importing TensorFlow takes seconds of one core, a large part of converting 20,000 faces on two
cores, and it forces decode workers to be spawned rather than forked. The converter only needs two
fixed record layouts, so they are encoded here: a `tf.train.Example` in protobuf's deterministic
wire form (map keys sorted), framed as TFRecord (length, CRC-32C of the length, data, CRC-32C of
the data, both CRCs masked). The CRC comes from `google-crc32c`. Tests check every byte against
`tf.train.Example(...).SerializeToString(deterministic=True)` and read the files back with
`tf.data.TFRecordDataset`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import struct

import google_crc32c

from ..atomic import open_new

# A TFRecord entry: uint64 length, masked CRC-32C of the length, data, masked CRC-32C of the data.
_LENGTH = struct.Struct("<Q")
_CRC_BYTES = 4


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 fields: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _header(number: int, length: int) -> bytes:
    """Tag and length of a length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(length)


def _field(number: int, payload: bytes) -> bytes:
    return _header(number, len(payload)) + payload


def _is_bytes(value) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def _feature_parts(value) -> list:
    """A `tf.train.Feature` as parts to join: bytes -> BytesList (field 1), ints -> packed
    Int64List (field 3). A bytes value is given by its length; `encode_example` puts it in the
    None slot, so the image bytes are copied once, at the final join."""
    if isinstance(value, int):  # the length of a bytes value
        inner = _header(1, value)
        return [_header(1, len(inner) + value), inner, None]
    packed = b"".join(_varint(item) for item in value)
    return [_field(3, _field(1, packed) if packed else b"")]  # protobuf omits an empty packed field


@functools.lru_cache(maxsize=256)
def _example_layout(key: tuple) -> tuple:
    """Every byte of an Example but its bytes values, as fixed pieces and None slots (in key order).
    A converter writes thousands of records with one layout: built once, reused for all of them."""
    entries = []
    for name, value in key:
        entry_key = _field(1, name.encode())
        feature = _feature_parts(value)
        feature_length = sum(value if part is None else len(part) for part in feature)
        value_header = _header(2, feature_length)
        entries += [_header(1, len(entry_key) + len(value_header) + feature_length), entry_key, value_header, *feature]
    byte_lengths = sum(value for _, value in key if isinstance(value, int))
    return (_header(1, byte_lengths + sum(len(piece) for piece in entries if piece is not None)), *entries)


def encode_example(features: dict) -> bytes:
    """`tf.train.Example` bytes for {name: bytes or sequence of ints}, identical to TensorFlow's
    deterministic serialization (map keys in order)."""
    names = sorted(features)
    values = [bytes(features[name]) if _is_bytes(features[name]) else features[name] for name in names]
    key = tuple(
        (name, len(value) if isinstance(value, bytes) else tuple(int(item) for item in value))
        for name, value in zip(names, values)
    )
    blobs = iter([value for value in values if isinstance(value, bytes)])
    return b"".join([next(blobs) if piece is None else piece for piece in _example_layout(key)])


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame_record(data: bytes) -> bytes:
    """One TFRecord entry holding `data`."""
    length = _LENGTH.pack(len(data))
    return length + _masked_crc(length) + data + _masked_crc(data)


def count_records(path: str) -> int:
    """Entries in an uncompressed TFRecord file, from its framing alone: no TensorFlow runtime
    (MultiWorkerMirroredStrategy must be created before that starts). ValueError if truncated."""
    count, size = 0, os.path.getsize(path)
    with open(path, "rb") as file:
        while file.tell() < size:
            header = file.read(_LENGTH.size)
            if len(header) < _LENGTH.size:
                raise ValueError(f"{path} is truncated (a partial record at its end)")
            if file.seek(_CRC_BYTES + _LENGTH.unpack(header)[0] + _CRC_BYTES, os.SEEK_CUR) > size:
                raise ValueError(f"{path} is truncated (a partial record at its end)")
            count += 1
    return count


@contextlib.contextmanager
def naming(path: str):
    """Re-raise an OSError that names no file (a write on a full disk does not) as one naming `path`,
    so the converter can say which file it was writing."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            raise OSError(error.errno, error.strerror or str(error), path) from error
        raise


def check_records(path: str, on_read=None) -> tuple[int, str]:
    """Walk every record of a TFRecord file checking what TensorFlow's reader checks (the framing
    and both CRC-32Cs) and return (records, SHA-256 of the file). ValueError naming the first
    damaged record and the byte where it starts. `on_read(bytes)` is called as the file is read (a progress bar)."""
    count, offset, sha256 = 0, 0, hashlib.sha256()
    with open(path, "rb") as file:
        while header := file.read(_LENGTH.size + _CRC_BYTES):
            sha256.update(header)
            if len(header) < _LENGTH.size + _CRC_BYTES:
                raise ValueError(f"record {count + 1} (at byte {offset}) is truncated: the file ends inside its header")
            length_bytes = header[: _LENGTH.size]
            if _masked_crc(length_bytes) != header[_LENGTH.size :]:
                raise ValueError(f"record {count + 1} (at byte {offset}) is corrupt: its length fails its CRC")
            length = _LENGTH.unpack(length_bytes)[0]
            body = file.read(length + _CRC_BYTES)
            sha256.update(body)
            if len(body) < length + _CRC_BYTES:
                raise ValueError(f"record {count + 1} (at byte {offset}) is truncated: the file ends inside it")
            if _masked_crc(body[:length]) != body[length:]:
                raise ValueError(f"record {count + 1} (at byte {offset}) is corrupt: its data fails its CRC")
            count += 1
            offset += len(header) + len(body)
            if on_read is not None:
                on_read(len(header) + len(body))
    return count, sha256.hexdigest()


class TFRecordFile:
    """Appends framed records to a file and keeps the SHA-256 and size of everything written, so a
    finished shard's checksum needs no second read. `durable`: close() waits until the data is on
    disk (for files renamed into place; not needed for scratch parts). An OSError (a full disk)
    names the file."""

    def __init__(self, path: str, durable: bool = True):
        self.path = path
        self.durable = durable
        self.size = 0
        with naming(path):
            self._file = open_new(path)  # never through a link or hard link planted at the name
        self._sha256 = hashlib.sha256()

    def write_framed(self, framed: bytes) -> None:
        """Bytes already framed: one or more whole records."""
        with naming(self.path):
            self._file.write(framed)
        self._sha256.update(framed)
        self.size += len(framed)

    def write(self, data: bytes) -> None:
        self.write_framed(frame_record(data))

    def close(self) -> str:
        """Flush to disk and return the file's SHA-256 (hex). The file is closed even when flushing
        fails (a full disk), and the error raised."""
        if not self._file.closed:
            with naming(self.path):
                try:
                    self._file.flush()
                    if self.durable:
                        os.fsync(self._file.fileno())
                finally:
                    with contextlib.suppress(OSError):  # its flush fails again: the first error is the one to report
                        self._file.close()
        return self._sha256.hexdigest()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
