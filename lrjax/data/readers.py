"""Readers of the original dataset files: IDX (MNIST, Fashion-MNIST) and the CIFAR binary format."""

from __future__ import annotations

import gzip
import zlib

import numpy as np

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (gzipped or raw): a big-endian header, then the array, row-major.

  Args:
    path: the file, gzipped (recognised by its first bytes, whatever its name) or raw.

  Returns:
    The array, of the shape and type its header gives, in native byte order.

  Raises:
    ValueError: the file is truncated, too long, or its magic number is not an IDX one.
  """
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise ValueError(f"corrupt gzip file {path!r}: {e}") from None
  if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
    raise ValueError(f"{path!r} is not an IDX file (magic number {raw[:4].hex()!r})")
  ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise ValueError(f"{path!r}: truncated IDX header")
  shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
  expected = header + int(np.prod(shape)) * dtype.itemsize
  if len(raw) != expected:
    raise ValueError(
      f"{path!r}: IDX header says shape {shape} ({expected} bytes) but the file has "
      f"{len(raw)} bytes"
    )
  return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_cifar_binary(paths: list[str], label_bytes: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """Reads CIFAR binary files into (uint8 [N, 32, 32, 3] NHWC images, int32 [N] labels).

  A record is `label_bytes` label bytes, then 3072 image bytes, channel-major (1024 R, G, B).
  CIFAR-10 has one label byte; CIFAR-100 two (coarse, fine), of which the last, fine (100-class)
  label is returned, as tfds' "cifar100" does.

  Args:
    paths: the binary files of one split, read in this order.
    label_bytes: 1 (CIFAR-10) or 2 (CIFAR-100).

  Returns:
    (images, labels) of every record of the files, in order.

  Raises:
    ValueError: a file is empty or its size is not a whole number of records.
  """
  images, labels = [], []
  record = label_bytes + 3072
  for path in paths:
    raw = np.fromfile(path, np.uint8)
    if raw.size == 0 or raw.size % record:
      raise ValueError(
        f"{path!r}: size {raw.size} is not a positive multiple of the {record}-byte record"
      )
    raw = raw.reshape(-1, record)
    labels.append(raw[:, label_bytes - 1].astype(np.int32))
    images.append(raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
  return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)
