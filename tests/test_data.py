"""Dataset readers (IDX, CIFAR binary, tfds, synthetic), data order, and on-device preprocessing."""

import gzip
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrjax.data import datasets as data
from lrjax.data import preprocess, readers

# ------------------------------------------------------------------ helpers


def write_idx(path, array, compress):
  codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
  array = np.asarray(array)
  header = bytes([0, 0, codes[array.dtype], array.ndim])
  header += np.asarray(array.shape, ">u4").tobytes()
  payload = header + array.tobytes()
  with (gzip.open if compress else open)(path, "wb") as f:
    f.write(payload)


def write_mnist(folder, n_train=5, n_test=3, compress=True):
  rng = np.random.default_rng(0)
  arrays = {}
  for split, n in (("train", n_train), ("t10k", n_test)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (n,), dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, compress)
    write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, compress)
    arrays[split] = images, labels
  return arrays


def cifar_records(images, labels):
  """NHWC images -> CIFAR records: label byte(s), then the image channel-major."""
  chw = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
  return np.concatenate([labels.reshape(len(images), -1), chw], axis=1).astype(np.uint8).tobytes()


# ------------------------------------------------------------------ IDX


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
  array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  write_idx(tmp_path / "a", array, compress)
  np.testing.assert_array_equal(readers.read_idx(str(tmp_path / "a")), array)
  wide = np.array([1, -2, 70000], ">i4")
  write_idx(tmp_path / "b", wide, compress)
  out = readers.read_idx(str(tmp_path / "b"))
  np.testing.assert_array_equal(out, [1, -2, 70000])
  assert out.dtype.isnative


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_from_idx_folder(tmp_path, compress):
  arrays = write_mnist(tmp_path, compress=compress)
  ds = data.load_dataset("mnist", data_dir=str(tmp_path))
  assert ds.train_images.shape == (5, 28, 28, 1) and ds.test_images.shape == (3, 28, 28, 1)
  assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int32
  np.testing.assert_array_equal(ds.train_images[..., 0], arrays["train"][0])
  np.testing.assert_array_equal(ds.test_labels, arrays["t10k"][1])
  assert ds.num_classes == 10 and ds.image_shape == (28, 28, 1) and ds.name == "mnist"


@pytest.mark.parametrize(
  "payload, message",
  [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "says shape \\(5,\\)"),  # truncated data
    (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "has 11 bytes"),  # trailing bytes
    (b"\x08\x03\x00\x00", "not an IDX file"),  # wrong magic
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    (b"", "not an IDX file"),
  ],
)
def test_corrupt_idx(tmp_path, payload, message):
  (tmp_path / "f").write_bytes(payload)
  with pytest.raises(ValueError, match=message):
    readers.read_idx(str(tmp_path / "f"))


def test_corrupt_gzip(tmp_path):
  blob = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")
  (tmp_path / "f.gz").write_bytes(blob[: len(blob) // 2])
  with pytest.raises(ValueError, match="corrupt gzip"):
    readers.read_idx(str(tmp_path / "f.gz"))


def test_idx_labels_must_match_images(tmp_path):
  write_mnist(tmp_path)
  write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), True)
  with pytest.raises(ValueError, match="labels must be \\[3\\]"):
    data.load_dataset("mnist", data_dir=str(tmp_path))


def test_missing_idx_file_says_how_to_get_it(tmp_path):
  write_mnist(tmp_path)
  os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(data.DatasetNotFoundError, match="t10k-labels.*IDX files"):
    data.load_dataset("mnist", data_dir=str(tmp_path))
  with pytest.raises(data.DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
    data.load_dataset("fashion_mnist", data_dir=str(tmp_path), source="files")


# ------------------------------------------------------------------ CIFAR binary


def test_cifar10_binary(tmp_path):
  folder = tmp_path / "cifar-10-batches-bin"
  folder.mkdir()
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (13, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, (13,), dtype=np.uint8)
  for i in range(5):
    (folder / f"data_batch_{i + 1}.bin").write_bytes(
      cifar_records(images[2 * i : 2 * i + 2], labels[2 * i : 2 * i + 2])
    )
  (folder / "test_batch.bin").write_bytes(cifar_records(images[10:], labels[10:]))
  for data_dir in (tmp_path, folder):  # the extracted folder or its parent
    ds = data.load_dataset("cifar10", data_dir=str(data_dir))
    np.testing.assert_array_equal(ds.train_images, images[:10])
    np.testing.assert_array_equal(ds.test_labels, labels[10:])
    assert ds.train_images.flags.c_contiguous and ds.num_classes == 10


def test_cifar100_binary_uses_fine_labels(tmp_path):
  folder = tmp_path / "cifar-100-binary"
  folder.mkdir()
  images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  coarse, fine = np.array([1, 2, 3, 4]), np.array([90, 80, 70, 60])
  labels = np.stack([coarse, fine], axis=1)
  (folder / "train.bin").write_bytes(cifar_records(images[:3], labels[:3]))
  (folder / "test.bin").write_bytes(cifar_records(images[3:], labels[3:]))
  ds = data.load_dataset("cifar100", data_dir=str(tmp_path), source="files")
  np.testing.assert_array_equal(ds.train_labels, [90, 80, 70])
  np.testing.assert_array_equal(ds.test_images, images[3:])
  assert ds.num_classes == 100


def test_cifar_binary_bad_size(tmp_path):
  (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * 3074)
  with pytest.raises(ValueError, match="3073-byte record"):
    readers.read_cifar_binary([str(tmp_path / "data_batch_1.bin")])


# ------------------------------------------------------------------ tfds and missing data


@pytest.mark.parametrize(
  "name, shape, classes", [("cifar10", (32, 32, 3), 10), ("fashion_mnist", (28, 28, 1), 10)]
)
def test_tfds_source_under_mock_data(tmp_path, name, shape, classes):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6):
    ds = data.load_dataset(name, data_dir=str(tmp_path / "tfds"), source="tfds")
  assert ds.train_images.shape == (6, *shape) and ds.test_images.shape == (6, *shape)
  assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int32
  assert ds.num_classes == classes and 0 <= ds.train_labels.min() <= ds.train_labels.max() < 10


def test_auto_falls_back_to_tfds_when_no_files(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=2):
    ds = data.load_dataset("cifar10", data_dir=str(tmp_path))
  assert ds.train_images.shape == (2, 32, 32, 3)


def test_missing_cifar_says_how_to_get_it(tmp_path):
  with pytest.raises(data.DatasetNotFoundError, match="cifar-10-binary.tar.gz") as info:
    data.load_dataset("cifar10", data_dir=str(tmp_path))
  assert info.value.__cause__ is None and info.value.__suppress_context__
  assert isinstance(info.value, ValueError)
  with pytest.raises(data.DatasetNotFoundError, match="needs data_dir"):
    data.load_dataset("cifar100", source="files")


def test_missing_tfds_package(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now raises ImportError
  with pytest.raises(data.DatasetNotFoundError, match="not installed.*cifar-100-binary"):
    data.load_dataset("cifar100", data_dir=str(tmp_path))


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(name="imagenet"), "config.dataset='imagenet': split 'train' not found"),
    (dict(name="cifar10", source="web"), "source must be one of"),
    (dict(name="synthetic:32x32"), "synthetic:HxWxC"),
  ],
)
def test_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    data.load_dataset(**kwargs)


def test_dataset_validates_labels():
  images = np.zeros((2, 4, 4, 1), np.uint8)
  with pytest.raises(ValueError, match="train_labels must lie in \\[0, 3\\)"):
    data.Dataset(images, np.array([0, 3]), images, np.array([0, 1]), 3, "x")


@pytest.mark.slow
def test_real_fashion_mnist():
  if not os.path.isdir(data.FASHION_MNIST_DIR):
    pytest.skip(f"{data.FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)")
  ds = data.load_dataset("fashion_mnist")
  assert ds.train_images.shape == (60000, 28, 28, 1) and ds.test_images.shape == (10000, 28, 28, 1)
  assert ds.num_classes == 10
  np.testing.assert_array_equal(np.bincount(ds.train_labels), [6000] * 10)
  np.testing.assert_array_equal(np.bincount(ds.test_labels), [1000] * 10)
  np.testing.assert_allclose(ds.mean, [72.94], atol=0.01)
  np.testing.assert_allclose(ds.std, [90.02], atol=0.01)


# ------------------------------------------------------------------ synthetic


def test_synthetic_is_deterministic_and_learnable():
  a, b = data.load_dataset("synthetic"), data.load_dataset("synthetic")
  np.testing.assert_array_equal(a.train_images, b.train_images)
  np.testing.assert_array_equal(a.test_labels, b.test_labels)
  assert a.train_images.shape == (1024, 32, 32, 3) and a.num_classes == 10
  np.testing.assert_array_equal(
    np.bincount(a.train_labels), [1024 // 10 + (k < 4) for k in range(10)]
  )
  other = data.synthetic_dataset(seed=1)
  assert not np.array_equal(other.train_images, a.train_images)
  # Nearest class-mean colour classifies the test set: the classes are separable.
  colour = lambda x: x.reshape(len(x), -1, x.shape[-1]).mean(1)
  centroids = np.stack([colour(a.train_images[a.train_labels == k]).mean(0) for k in range(10)])
  dist = ((colour(a.test_images)[:, None, :] - centroids[None]) ** 2).sum(-1)
  assert (dist.argmin(1) == a.test_labels).mean() > 0.95


def test_synthetic_spec():
  ds = data.load_dataset("synthetic:28x28x1:50:20:5")
  assert ds.train_images.shape == (50, 28, 28, 1) and ds.test_images.shape == (20, 28, 28, 1)
  assert ds.num_classes == 5 and ds.name == "synthetic:28x28x1:50:20:5"


# ------------------------------------------------------------------ order


def test_epoch_permutation():
  p = data.epoch_permutation(0, 3, 1000)
  np.testing.assert_array_equal(np.sort(p), np.arange(1000))
  np.testing.assert_array_equal(p, data.epoch_permutation(0, 3, 1000))
  np.testing.assert_array_equal(p, data.epoch_permutation(np.int64(0), np.int32(3), 1000))
  assert not np.array_equal(p, data.epoch_permutation(0, 4, 1000))
  assert not np.array_equal(p, data.epoch_permutation(1, 3, 1000))
  assert data.epoch_permutation(0, 0, 0).shape == (0,)


@pytest.mark.parametrize("seed, epoch, n", [(-1, 0, 5), (0, 1.5, 5), (0, 0, True), (0, 0, -2)])
def test_epoch_permutation_bad_args(seed, epoch, n):
  with pytest.raises(ValueError, match="must be a non-negative integer"):
    data.epoch_permutation(seed, epoch, n)


# ------------------------------------------------------------------ preprocessing


def test_normalize_gives_zero_mean_unit_std():
  ds = data.synthetic_dataset(shape=(8, 8, 3), num_train=200, num_test=10)
  x = jax.jit(preprocess.normalize)(ds.train_images, ds.mean, ds.std)
  assert x.dtype == jnp.float32 and x.shape == ds.train_images.shape
  np.testing.assert_allclose(np.asarray(x).mean((0, 1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(np.asarray(x).std((0, 1, 2)), 1.0, atol=1e-4)


def test_constant_channel_std_is_floored():
  images = np.full((3, 2, 2, 1), 7, np.uint8)
  ds = data.Dataset(images, np.zeros(3, np.int32), images, np.zeros(3, np.int32), 2, "const")
  np.testing.assert_array_equal(ds.mean, [7.0])
  np.testing.assert_array_equal(ds.std, [1.0])


def distinct_images(n=32, h=8, w=8, c=2):
  """Pixels 1..255 that identify their position, so crops and flips can be recognised."""
  base = (np.arange(h * w * c).reshape(h, w, c) % 254 + 1).astype(np.uint8)
  return np.broadcast_to(base, (n, h, w, c)).copy()


augment_jit = jax.jit(preprocess.augment, static_argnames=("pad", "flip", "mode"))


def test_augment_shape_dtype_and_determinism():
  images = distinct_images()
  a = augment_jit(jax.random.key(0), images)
  assert a.shape == images.shape and a.dtype == jnp.uint8
  np.testing.assert_array_equal(a, augment_jit(jax.random.key(0), images))
  assert not np.array_equal(a, augment_jit(jax.random.key(1), images))


def test_augment_crops_are_translations():
  images = distinct_images()
  out = np.asarray(augment_jit(jax.random.key(0), images, pad=2, flip=False))
  padded = np.pad(images[0], ((2, 2), (2, 2), (0, 0)))
  windows = {(dy, dx): padded[dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)}
  found = [next(k for k, v in windows.items() if np.array_equal(v, img)) for img in out]
  assert len(set(found)) > 5  # many different offsets, not one
  assert (out == 0).any()  # zero padding shows


def test_augment_flips_some_images():
  images = distinct_images()
  out = np.asarray(augment_jit(jax.random.key(0), images, pad=0, flip=True))
  flipped = [np.array_equal(img, images[0, :, ::-1]) for img in out]
  kept = [np.array_equal(img, images[0]) for img in out]
  assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_augment_reflect_mode_has_no_black_border():
  out = augment_jit(jax.random.key(0), distinct_images(), pad=4, mode="reflect")
  assert (np.asarray(out) > 0).all()


def test_augment_bad_arguments():
  with pytest.raises(ValueError, match="mode must be"):
    preprocess.augment(jax.random.key(0), distinct_images(), mode="wrap")
  with pytest.raises(ValueError, match="pad must be a non-negative integer, got -1"):
    preprocess.augment(jax.random.key(0), distinct_images(), pad=-1)


def test_preprocessing_on_a_sharded_batch():
  """The batch sharded over every device, as in the train step; results match one device."""
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  images = distinct_images(n=8 * jax.device_count())
  mean, std = np.array([100.0, 50.0], np.float32), np.array([20.0, 10.0], np.float32)
  step = jax.jit(lambda key, x: preprocess.normalize(preprocess.augment(key, x), mean, std))
  sharded = step(jax.random.key(3), jax.device_put(images, sharding))
  np.testing.assert_allclose(sharded, step(jax.random.key(3), images), rtol=1e-6)
