import gzip

import numpy as np
import pytest
from conftest import idx_bytes

from companion.data import parse_idx, read_idx


def test_round_trip_uint8_3d():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(idx_bytes(array))
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, array)


def test_big_endian_int32_payload():
    values = np.array([1, -2, 70000], dtype=">i4")
    data = bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + values.tobytes()
    np.testing.assert_array_equal(parse_idx(data), [1, -2, 70000])


def test_gz_and_plain_files_read_the_same(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (5, 7), dtype=np.uint8)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), read_idx(tmp_path / "a.gz"))


def test_truncated_payload_is_named():
    data = idx_bytes(np.zeros((4, 4), dtype=np.uint8))[:-3]
    with pytest.raises(ValueError, match=r"myfile holds 25 bytes but its header \(4, 4\) needs 28"):
        parse_idx(data, source="myfile")


def test_bad_magic_is_named():
    with pytest.raises(ValueError, match="not an IDX file.*delete it"):
        parse_idx(b"PK\x03\x04rest", source="archive.zip")


def test_truncated_gzip_is_reported(tmp_path):
    blob = gzip.compress(idx_bytes(np.ones((50, 50), dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a complete gzip file"):
        read_idx(tmp_path / "cut.gz")
