"""The official NAS-Bench-101 ``.tfrecord`` files, read (and written) without TensorFlow.

A TFRecord file is a sequence of records, each framed as

    uint64 length (little-endian) | uint32 masked crc32c(length bytes)
    | payload (length bytes)      | uint32 masked crc32c(payload)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282d8f8`` (mod 2**32) and crc32c
the Castagnoli CRC (reflected polynomial 0x82f63b78, initial and final xor 0xffffffff).

In ``nasbench_full.tfrecord`` / ``nasbench_only108.tfrecord`` each payload is one
training run (one repeat of one architecture at one epoch budget), the UTF-8 JSON list

    [module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]

``raw_adjacency`` is the row-major adjacency matrix as a string of '0'/'1' digits (V*V
characters), ``raw_operations`` the op names joined by ',', and ``raw_metrics`` the base64
of a serialized ``nasbench.ModelMetrics`` protobuf (nasbench/lib/model_metrics.proto):

    ModelMetrics   { repeated EvaluationData evaluation_data = 1; optional int32
                     trainable_parameters = 2; optional double total_time = 3; }
    EvaluationData { optional double current_epoch = 1; training_time = 2;
                     train_accuracy = 3; validation_accuracy = 4; test_accuracy = 5;
                     optional string checkpoint_path = 6; }

``evaluation_data`` holds the evaluations at the start (epoch 0), half-way and the end of
training; the official API reads index 1 as "halfway" and index 2 as "final".

Speed: CRCs are checked in batches with numpy (all records of a read block at once, one
vectorised table step per 4 bytes of the longest record), which keeps the pure-Python
cost per record to the framing and the JSON/protobuf decoding.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from estbench.errors import BadInput, MissingData

MASK_DELTA = 0xA282D8F8
_POLY = 0x82F63B78  # crc32c (Castagnoli), reflected
_HEADER = 12  # uint64 length + uint32 masked crc of it
_FOOTER = 4
_BLOCK = 1 << 22  # bytes read at a time (memory stays ~ a few blocks whatever the file size)
_BATCH = 4096  # records whose CRCs are computed together
_BATCH_MAX_LEN = 4096  # longer payloads are checked one by one (the NB101 ones are ~400 bytes)
MAX_RECORD = 1 << 30  # a record longer than this is a damaged length field


def _make_tables() -> np.ndarray:
    t0 = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(3):  # slicing-by-4: tables[k][n] = crc of byte n followed by k zero bytes
        prev = tables[-1]
        tables.append([(prev[n] >> 8) ^ t0[prev[n] & 0xFF] for n in range(256)])
    return np.array(tables, dtype=np.uint32)


_TABLES = _make_tables()
_T0 = _TABLES[0].tolist()
_T1, _T2, _T3 = (np.ascontiguousarray(_TABLES[k]) for k in (1, 2, 3))
_T0_NP = np.ascontiguousarray(_TABLES[0])
_ZEROS = [0xFFFFFFFF]  # _ZEROS[n]: register after n zero bytes from 0xffffffff


def crc32c(data: bytes, crc: int = 0) -> int:
    """The crc32c of ``data`` (pass a previous result as ``crc`` to continue it). Pure
    Python, one table step per byte: for short data; :func:`crc32c_many` for many records."""
    c = crc ^ 0xFFFFFFFF
    t = _T0
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """The TFRecord masking of a crc32c."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF


_ZEROS_NP = np.array(_ZEROS, dtype=np.uint32)


def _zeros_state(lengths: np.ndarray) -> np.ndarray:
    """Register after ``lengths[i]`` zero bytes starting from 0xffffffff (cached)."""
    global _ZEROS_NP
    top = int(lengths.max(initial=0))
    if top >= len(_ZEROS):
        c = _ZEROS[-1]
        for _ in range(len(_ZEROS), top + 1):
            c = _T0[c & 0xFF] ^ (c >> 8)
            _ZEROS.append(c)
        _ZEROS_NP = np.array(_ZEROS, dtype=np.uint32)
    return _ZEROS_NP[lengths]


def _crc_batch(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """crc32c of ``buf[starts[i]:starts[i] + lengths[i]]`` for every i (uint32 array):
    by length, a few thousand at a time; the rare long messages one by one."""
    out = np.zeros(len(starts), dtype=np.uint32)
    order = np.argsort(lengths, kind="stable")
    n_short = int(np.searchsorted(lengths[order], _BATCH_MAX_LEN, side="right"))
    for k in range(0, n_short, _BATCH):
        pick = order[k : min(k + _BATCH, n_short)]
        out[pick] = _crc_core(buf, starts[pick], lengths[pick])
    for i in order[n_short:]:
        out[i] = crc32c(buf[starts[i] : starts[i] + lengths[i]].tobytes())
    return out


def _crc_core(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The vectorised crc32c of the messages (similar lengths, a few thousand of them).

    The messages are right-aligned in a (n, W) array, zero-padded in front: from register
    0 leading zeros change nothing, and since the register update is linear over GF(2)
    the real initial value 0xffffffff contributes the register reached from it by
    ``length`` zero bytes, xor-ed in at the end. Slicing-by-4: one step per 4 bytes."""
    n = len(starts)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    width = int(lengths.max())
    width = max(4, (width + 3) // 4 * 4)
    ends = starts + lengths
    idx = ends[:, None] - width + np.arange(width, dtype=np.int64)[None, :]
    data = buf[np.maximum(idx, 0)]
    data[idx < starts[:, None]] = 0
    words = np.ascontiguousarray(data.view("<u4").T)  # (width / 4, n), little-endian words
    reg = np.zeros(n, dtype=np.uint32)
    tmp = np.empty(n, dtype=np.uint32)
    acc = np.empty(n, dtype=np.uint32)
    for w in words:
        np.bitwise_xor(reg, w, out=reg)
        np.bitwise_and(reg, 0xFF, out=tmp)
        np.take(_T3, tmp, out=acc)
        np.right_shift(reg, 8, out=tmp)
        tmp &= 0xFF
        acc ^= _T2[tmp]
        np.right_shift(reg, 16, out=tmp)
        tmp &= 0xFF
        acc ^= _T1[tmp]
        np.right_shift(reg, 24, out=tmp)
        acc ^= _T0_NP[tmp]
        reg, acc = acc, reg
    return reg ^ _zeros_state(lengths) ^ np.uint32(0xFFFFFFFF)


def _mask_np(crc: np.ndarray) -> np.ndarray:
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(MASK_DELTA)


def crc32c_many(chunks: list[bytes]) -> list[int]:
    """crc32c of each of ``chunks`` (vectorised over the chunks)."""
    if not chunks:
        return []
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    buf = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    return _crc_batch(buf, starts, lengths).tolist()


# ---- reading ---------------------------------------------------------------------------


def _check_batch(path: Path, buf: bytes, base: int, recs: list[tuple[int, int]]) -> None:
    """Verify the length and payload CRCs of ``recs`` ((position in buf, payload length));
    BadInput naming the file and byte offset of the first bad one."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    pos = np.fromiter((p for p, _ in recs), dtype=np.int64, count=len(recs))
    lengths = np.fromiter((n for _, n in recs), dtype=np.int64, count=len(recs))
    head_want = np.frombuffer(b"".join(buf[p + 8 : p + 12] for p, _ in recs), dtype="<u4")
    head = _mask_np(_crc_batch(arr, pos, np.full(len(recs), 8, dtype=np.int64)))
    data_want = np.frombuffer(b"".join(buf[p + 12 + n : p + 16 + n] for p, n in recs), dtype="<u4")
    data = _mask_np(_crc_batch(arr, pos + _HEADER, lengths))
    bad_head = head != head_want
    bad_data = (data != data_want) & ~bad_head
    if bad_head.any() or bad_data.any():
        k = int(np.nonzero(bad_head | bad_data)[0][0])
        what = "length field" if bad_head[k] else f"{int(lengths[k])}-byte record"
        raise BadInput(f"{path}: bad CRC of the {what} at byte {base + recs[k][0]}: the file is damaged")


def iter_records(path: str | Path, verify: bool = True) -> Iterator[tuple[int, bytes]]:
    """(byte offset, payload) of every record of the TFRecord file ``path``, in file order,
    reading a few MB at a time. With ``verify`` (the default) both CRCs of every record are
    checked; a bad CRC or a truncated record is one BadInput naming the file and offset."""
    path = Path(path)
    try:
        fh = open(path, "rb")  # not "with": closed in the finally, also when the generator is dropped
    except FileNotFoundError:
        raise MissingData(f"{path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        buf = b""
        base = 0  # file offset of buf[0]
        want = _BLOCK  # bytes to read next
        while True:
            more = fh.read(want)
            buf += more
            recs: list[tuple[int, int]] = []
            pos = 0
            need = 0  # size of the first record that is not wholly in buf
            while len(buf) - pos >= _HEADER:
                (length,) = struct.unpack_from("<Q", buf, pos)
                need = _HEADER + length + _FOOTER
                if pos + need > len(buf):  # trust the length only once its CRC is checked
                    if verify and mask(crc32c(buf[pos : pos + 8])) != struct.unpack_from("<I", buf, pos + 8)[0]:
                        raise BadInput(f"{path}: bad CRC of the length field at byte {base + pos}: the file is damaged")
                    if length > MAX_RECORD:
                        raise BadInput(f"{path}: the record at byte {base + pos} claims {length} bytes")
                    break
                recs.append((pos, length))
                pos += need
                need = 0
            if recs and verify:
                _check_batch(path, buf, base, recs)
            for p, n in recs:
                yield base + p, buf[p + _HEADER : p + _HEADER + n]
            buf = buf[pos:]
            base += pos
            if not more:  # end of file
                if buf:
                    need = need or _HEADER
                    raise BadInput(
                        f"{path}: truncated record at byte {base}: it needs {need} bytes, the file ends after {len(buf)}"
                    )
                return
            want = max(_BLOCK, need - len(buf))
    finally:
        fh.close()


# ---- writing (fixtures) ------------------------------------------------------------------


def frame(payloads: list[bytes]) -> bytes:
    """``payloads`` in the TFRecord framing, back to back."""
    lens = [struct.pack("<Q", len(p)) for p in payloads]
    crcs = crc32c_many(lens + payloads)
    k = len(payloads)
    return b"".join(
        b"".join((lens[i], struct.pack("<I", mask(crcs[i])), payloads[i], struct.pack("<I", mask(crcs[k + i]))))
        for i in range(k)
    )


def write_records(path: str | Path, payloads: Iterable[bytes], batch: int = 4096) -> int:
    """Write ``payloads`` as a TFRecord file (the official framing); the number written."""
    count = 0
    chunk: list[bytes] = []
    with open(path, "wb") as fh:
        for p in payloads:
            chunk.append(bytes(p))
            if len(chunk) >= batch:
                fh.write(frame(chunk))
                count += len(chunk)
                chunk = []
        if chunk:
            fh.write(frame(chunk))
            count += len(chunk)
    return count


# ---- ModelMetrics protobuf -------------------------------------------------------------


@dataclass(slots=True)
class EvaluationData:
    current_epoch: float = 0.0
    training_time: float = 0.0
    train_accuracy: float = 0.0
    validation_accuracy: float = 0.0
    test_accuracy: float = 0.0
    checkpoint_path: str = ""


@dataclass(slots=True)
class ModelMetrics:
    evaluation_data: list[EvaluationData] = field(default_factory=list)
    trainable_parameters: int | None = None
    total_time: float | None = None


_DOUBLE = struct.Struct("<d")
_EVAL_FIELDS = {
    1: "current_epoch",
    2: "training_time",
    3: "train_accuracy",
    4: "validation_accuracy",
    5: "test_accuracy",
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("a varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("a varint is longer than 10 bytes")


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported wire type {wire}")


_EVAL_FAST = struct.Struct("<BdBdBdBdBd")  # the five doubles in field order: how the official files store them
_EVAL_TAGS = (1 << 3 | 1, 2 << 3 | 1, 3 << 3 | 1, 4 << 3 | 1, 5 << 3 | 1)


def _decode_eval(buf: bytes, pos: int, end: int) -> EvaluationData:
    if end - pos == _EVAL_FAST.size:
        t1, a, t2, b, t3, c, t4, d, t5, e = _EVAL_FAST.unpack_from(buf, pos)
        if (t1, t2, t3, t4, t5) == _EVAL_TAGS:
            return EvaluationData(a, b, c, d, e)
    ev = EvaluationData()
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if wire == 1 and num in _EVAL_FIELDS:
            if pos + 8 > end:
                raise ValueError("a double runs past the end of EvaluationData")
            setattr(ev, _EVAL_FIELDS[num], _DOUBLE.unpack_from(buf, pos)[0])
            pos += 8
        elif num == 6 and wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise ValueError("checkpoint_path runs past the end of EvaluationData")
            ev.checkpoint_path = buf[pos : pos + n].decode("utf-8")
            pos += n
        elif num == 0:
            raise ValueError("field number 0")
        else:
            pos = _skip(buf, pos, wire)
    if pos != end:
        raise ValueError("a field runs past the end of EvaluationData")
    return ev


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Parse a serialized ``nasbench.ModelMetrics``; unknown fields are skipped (as
    protobuf does). ValueError (or UnicodeDecodeError) on malformed bytes."""
    out = ModelMetrics()
    pos, end = 0, len(buf)
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if num == 1 and wire == 2:
            n = buf[pos] if pos < end else 0x80
            if n < 0x80:
                pos += 1
            else:
                n, pos = _varint(buf, pos)
            if pos + n > end:
                raise ValueError("evaluation_data runs past the end")
            out.evaluation_data.append(_decode_eval(buf, pos, pos + n))
            pos += n
        elif num == 2 and wire == 0:
            v, pos = _varint(buf, pos)
            v &= 0xFFFFFFFF  # int32: negative values are sign-extended to 64 bits
            out.trainable_parameters = v - (1 << 32) if v >= 1 << 31 else v
        elif num == 3 and wire == 1:
            if pos + 8 > end:
                raise ValueError("total_time runs past the end")
            out.total_time = _DOUBLE.unpack_from(buf, pos)[0]
            pos += 8
        elif num == 0:
            raise ValueError("field number 0")
        else:
            pos = _skip(buf, pos, wire)
    if pos != end:
        raise ValueError("the last field runs past the end")
    return out


def _put_varint(out: bytearray, v: int) -> None:
    v &= (1 << 64) - 1
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def encode_model_metrics(m: ModelMetrics) -> bytes:
    """Serialize ``m`` as protobuf does (fields in number order; zeros written, since the
    official writer sets every field)."""
    out = bytearray()
    for ev in m.evaluation_data:
        sub = bytearray()
        for num, name in _EVAL_FIELDS.items():
            sub.append(num << 3 | 1)
            sub += _DOUBLE.pack(getattr(ev, name))
        if ev.checkpoint_path:
            raw = ev.checkpoint_path.encode("utf-8")
            sub.append(6 << 3 | 2)
            _put_varint(sub, len(raw))
            sub += raw
        out.append(1 << 3 | 2)
        _put_varint(out, len(sub))
        out += sub
    if m.trainable_parameters is not None:
        out.append(2 << 3 | 0)
        _put_varint(out, m.trainable_parameters)
    if m.total_time is not None:
        out.append(3 << 3 | 1)
        out += _DOUBLE.pack(m.total_time)
    return bytes(out)


# ---- one NAS-Bench-101 row -------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One training run of the official file, as stored."""

    module_hash: str
    epochs: int
    adjacency: str  # V*V '0'/'1' characters, row-major
    operations: str  # op names joined by ','
    metrics: ModelMetrics


_HEX = frozenset("0123456789abcdef")
_BITS = frozenset("01")


def encode_row(row: Row) -> bytes:
    """The payload the official file stores for ``row``."""
    raw = base64.b64encode(encode_model_metrics(row.metrics)).decode("ascii")
    return json.dumps([row.module_hash, row.epochs, row.adjacency, row.operations, raw]).encode("utf-8")


def decode_row(payload: bytes, where: str) -> Row:
    """Parse and check one payload; BadInput naming ``where`` (file and byte offset)."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{where}: the record is not JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
    if type(obj) is not list or len(obj) != 5:
        what = f"a list of {len(obj)}" if isinstance(obj, list) else f"a {type(obj).__name__}"
        raise BadInput(f"{where}: the record is {what}, not [module_hash, epochs, adjacency, operations, metrics]")
    module_hash, epochs, adjacency, operations, raw = obj
    if type(module_hash) is not str or len(module_hash) != 32 or not _HEX.issuperset(module_hash):
        raise BadInput(f"{where}: module hash {str(module_hash)[:40]!r} is not 32 lowercase hex digits")
    if type(epochs) is not int or epochs < 1:
        raise BadInput(f"{where}: epochs {epochs!r} is not a positive integer")
    if type(adjacency) is not str or not _BITS.issuperset(adjacency):
        raise BadInput(f"{where}: adjacency {str(adjacency)[:60]!r} is not a string of 0/1 digits")
    dim = int(len(adjacency) ** 0.5 + 0.5)
    if dim < 2 or dim * dim != len(adjacency):
        raise BadInput(f"{where}: adjacency has {len(adjacency)} digits, not V*V for a V >= 2")
    if type(operations) is not str or operations.count(",") != dim - 1:
        raise BadInput(f"{where}: operations {str(operations)[:80]!r} are not {dim} names joined by ','")
    if type(raw) is not str:
        raise BadInput(f"{where}: metrics are a {type(raw).__name__}, not a base64 string")
    try:
        metrics = decode_model_metrics(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error, UnicodeDecodeError, IndexError) as exc:
        raise BadInput(f"{where}: metrics are not a base64 ModelMetrics protobuf ({exc})") from None
    return Row(module_hash, epochs, adjacency, operations, metrics)


def iter_rows(path: str | Path, verify: bool = True) -> Iterator[Row]:
    """Every training run of an official NAS-Bench-101 ``.tfrecord`` file, in file order."""
    path = Path(path)
    for offset, payload in iter_records(path, verify=verify):
        yield decode_row(payload, f"{path} record at byte {offset}")
