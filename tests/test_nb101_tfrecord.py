"""The TFRecord framing, the ModelMetrics protobuf and one NB101 row, without TensorFlow."""

import base64
import json
import os
import random
import struct

import pytest

from estbench.errors import BadInput, MissingData
from estbench.spaces.nb101 import tfrecord as tfr
from estbench.spaces.nb101.tfrecord import EvaluationData, ModelMetrics, Row


def bitwise_crc32c(data: bytes) -> int:
    """An independent, bit-at-a-time crc32c (Castagnoli)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def official_frame(payload: bytes) -> bytes:
    """One record as TensorFlow's TFRecordWriter frames it."""

    def masked(crc):
        return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282D8F8) & 0xFFFFFFFF

    head = struct.pack("<Q", len(payload))
    return (
        head
        + struct.pack("<I", masked(bitwise_crc32c(head)))
        + payload
        + struct.pack("<I", masked(bitwise_crc32c(payload)))
    )


def test_crc32c_known_values():
    assert tfr.crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert tfr.crc32c(b"") == 0
    assert tfr.crc32c(b"6789", tfr.crc32c(b"12345")) == 0xE3069283
    rnd = random.Random(1)
    chunks = [os.urandom(rnd.randrange(0, 300)) for _ in range(300)] + [b"", b"\x00" * 9, b"123456789"]
    assert tfr.crc32c_many(chunks) == [bitwise_crc32c(c) for c in chunks]


def test_writer_uses_the_official_framing(tmp_path):
    payloads = [b"", b"x", b"hello world" * 7]
    path = tmp_path / "a.tfrecord"
    assert tfr.write_records(path, payloads) == 3
    assert path.read_bytes() == b"".join(official_frame(p) for p in payloads)


def test_round_trip_across_blocks_batches_and_long_records(tmp_path, monkeypatch):
    rnd = random.Random(2)
    payloads = [os.urandom(rnd.randrange(0, 600)) for _ in range(5000)]
    payloads.insert(1234, os.urandom(70_000))  # longer than the batched CRC path takes
    path = tmp_path / "b.tfrecord"
    tfr.write_records(path, payloads, batch=777)
    monkeypatch.setattr(tfr, "_BLOCK", 4096)  # many block boundaries, one record longer than a block
    got = list(tfr.iter_records(path))
    assert [p for _, p in got] == payloads
    offsets = [0]
    for p in payloads[:-1]:
        offsets.append(offsets[-1] + len(p) + 16)
    assert [o for o, _ in got] == offsets


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert list(tfr.iter_records(tmp_path / "empty.tfrecord")) == []
    with pytest.raises(MissingData, match="does not exist"):
        list(tfr.iter_records(tmp_path / "nope.tfrecord"))


def _three(tmp_path):
    path = tmp_path / "c.tfrecord"
    tfr.write_records(path, [b"a" * 10, b"b" * 20, b"c" * 30])
    return path, bytearray(path.read_bytes())


def test_bad_payload_crc_names_file_and_offset(tmp_path):
    path, raw = _three(tmp_path)
    raw[26 + 12 + 5] ^= 1  # a byte of the second payload (record 2 starts at 10 + 16)
    path.write_bytes(raw)
    with pytest.raises(BadInput, match=r"c\.tfrecord: bad CRC of the 20-byte record at byte 26") as e:
        list(tfr.iter_records(path))
    assert "\n" not in str(e.value)
    assert len(list(tfr.iter_records(path, verify=False))) == 3


def test_bad_length_crc(tmp_path):
    path, raw = _three(tmp_path)
    raw[26 + 9] ^= 0x40  # the masked CRC of the second length field
    path.write_bytes(raw)
    with pytest.raises(BadInput, match="bad CRC of the length field at byte 26"):
        list(tfr.iter_records(path))


def test_damaged_length_is_caught_by_its_crc(tmp_path):
    path, raw = _three(tmp_path)
    raw[26 + 3] = 0x7F  # length now ~2 GB: its CRC fails before it is trusted
    path.write_bytes(raw)
    with pytest.raises(BadInput, match="bad CRC of the length field at byte 26"):
        list(tfr.iter_records(path))


@pytest.mark.parametrize("cut, need", [(5, "12 bytes"), (12 + 7, "46 bytes"), (12 + 30 + 2, "46 bytes")])
def test_truncated_file(tmp_path, cut, need):
    path, raw = _three(tmp_path)
    path.write_bytes(raw[: 26 + 36 + cut])  # the third record (30 bytes) starts at 62
    with pytest.raises(BadInput, match=f"truncated record at byte 62: it needs {need}, the file ends after {cut}"):
        list(tfr.iter_records(path))


# ---- ModelMetrics ------------------------------------------------------------------------


def sample_metrics(epochs=108, params=1_234_567):
    evals = [
        EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1),
        EvaluationData(epochs / 2, 800.5, 0.8, 0.79, 0.785),
        EvaluationData(float(epochs), 1600.25, 1.0, 0.9375, 0.93),
    ]
    return ModelMetrics(evals, params, 1777.0)


def test_model_metrics_round_trip():
    m = sample_metrics()
    assert tfr.decode_model_metrics(tfr.encode_model_metrics(m)) == m
    m.evaluation_data[1].checkpoint_path = "/model_dir/model.ckpt-1234"
    m.trainable_parameters = -5  # int32, sign-extended as protobuf does
    assert tfr.decode_model_metrics(tfr.encode_model_metrics(m)) == m
    assert tfr.decode_model_metrics(b"") == ModelMetrics()


def test_model_metrics_wire_format():
    # hand-assembled: evaluation_data {validation_accuracy: 0.5, current_epoch: 4}, an unknown
    # varint field 9 = 300, trainable_parameters = 150, an unknown fixed32 field 10
    ev = b"\x21" + struct.pack("<d", 0.5) + b"\x09" + struct.pack("<d", 4.0)
    raw = b"\x0a" + bytes([len(ev)]) + ev + b"\x48\xac\x02" + b"\x10\x96\x01" + b"\x55" + b"\x00" * 4
    m = tfr.decode_model_metrics(raw)
    assert m.trainable_parameters == 150 and m.total_time is None
    assert m.evaluation_data == [EvaluationData(current_epoch=4.0, validation_accuracy=0.5)]


@pytest.mark.parametrize(
    "raw",
    [b"\x0a\x20" + b"\x00" * 5, b"\x10\x96", b"\x19\x00\x00", b"\x0b", b"\x00\x01", b"\x10" + b"\xff" * 11],
)
def test_model_metrics_malformed(raw):
    with pytest.raises(ValueError):
        tfr.decode_model_metrics(raw)


# ---- one row -----------------------------------------------------------------------------

HASH = "0123456789abcdef0123456789abcdef"
ROW = Row(HASH, 108, "011001000", "input,conv3x3-bn-relu,output", sample_metrics())


def test_row_round_trip():
    assert tfr.decode_row(tfr.encode_row(ROW), "here") == ROW


def _payload(obj) -> bytes:
    return json.dumps(obj).encode()


METRICS_B64 = base64.b64encode(tfr.encode_model_metrics(sample_metrics())).decode()


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\xff[", "not JSON"),
        (b"[1, 2", "not JSON"),
        (_payload({"hash": HASH}), "is a dict, not"),
        (_payload([HASH, 108, "011001000", "input,conv3x3-bn-relu,output"]), "a list of 4"),
        (_payload(["XYZ", 108, "011001000", "input,conv3x3-bn-relu,output", METRICS_B64]), "32 lowercase hex"),
        (_payload([HASH, "108", "011001000", "input,conv3x3-bn-relu,output", METRICS_B64]), "positive integer"),
        (_payload([HASH, 108, "01100100", "input,conv3x3-bn-relu,output", METRICS_B64]), "not V\\*V"),
        (_payload([HASH, 108, "0110a1000", "input,conv3x3-bn-relu,output", METRICS_B64]), "0/1 digits"),
        (_payload([HASH, 108, "011001000", "input,output", METRICS_B64]), "not 3 names"),
        (_payload([HASH, 108, "011001000", "input,conv3x3-bn-relu,output", "!!!"]), "not a base64 ModelMetrics"),
        (_payload([HASH, 108, "011001000", "input,conv3x3-bn-relu,output", "CiA="]), "not a base64 ModelMetrics"),
    ],
)
def test_row_wrong_shape(payload, message):
    with pytest.raises(BadInput, match=f"^f.tfrecord record at byte 7: .*{message}"):
        tfr.decode_row(payload, "f.tfrecord record at byte 7")


def test_iter_rows_names_the_offset(tmp_path):
    path = tmp_path / "rows.tfrecord"
    good = tfr.encode_row(ROW)
    tfr.write_records(path, [good, b'{"not": "a row"}'])
    with pytest.raises(BadInput, match=rf"rows\.tfrecord record at byte {len(good) + 16}: the record is a dict"):
        list(tfr.iter_rows(path))
