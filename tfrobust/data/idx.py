"""Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number ``0x0000TTDD`` (TT = element type, DD = number of
dimensions), then DD big-endian uint32 sizes, then the elements in C order, big-endian.
MNIST-style image files are ``0x00000803`` (uint8, N×H×W) and label files ``0x00000801``
(uint8, N). Files may be gzip-compressed (detected by content, not by name).

The whole file is validated — magic, dimensions and exact length — so a truncated download fails
with a one-line error naming the file instead of yielding a short or garbled array. Decoded arrays
are cached in memory per file and returned read-only.
"""

import gzip
import struct
import zlib

import numpy as np

from tfrobust.data._files import memory_cache, readonly, stamp
from tfrobust.errors import TfrobustError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# IDX element-type codes -> big-endian numpy dtypes.
_TYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def read_idx(path, magic=None) -> np.ndarray:
    """Reads one IDX file (raw or gzip).

    Args:
      path: the file.
      magic: if given, the exact magic number required (e.g. ``IMAGES_MAGIC``), which fixes the
        element type and number of dimensions.

    Returns:
      A read-only numpy array in native byte order with the file's dimensions.

    Raises:
      TfrobustError: missing file, bad gzip stream, wrong magic, or a length that does not match
        the header (truncated or trailing bytes); the message names the file.
    """
    return _read_idx(*stamp(path, "IDX file"), magic)


@memory_cache(maxsize=8)
def _read_idx(path, _mtime, _size, magic):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise TfrobustError(f"corrupt gzip IDX file {path}: {e}") from None
    if len(data) < 4:
        raise TfrobustError(f"not an IDX file (only {len(data)} bytes): {path}")
    found = struct.unpack(">I", data[:4])[0]
    zero, type_code, ndim = found >> 16, (found >> 8) & 0xFF, found & 0xFF
    if zero != 0 or type_code not in _TYPES or ndim == 0:
        raise TfrobustError(f"not an IDX file (bad magic 0x{found:08X}): {path}")
    if magic is not None and found != magic:
        raise TfrobustError(
            f"IDX file has magic 0x{found:08X}, expected 0x{magic:08X}: {path}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise TfrobustError(f"truncated IDX header ({len(data)} of {header} bytes): {path}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _TYPES[type_code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise TfrobustError(
            f"truncated IDX file ({len(data)} of {expected} bytes for dims {dims}): {path}")
    if len(data) > expected:
        raise TfrobustError(
            f"IDX file has {len(data) - expected} unexpected trailing bytes (dims {dims}): {path}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    if dtype.byteorder == ">" and dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return readonly(arr)
