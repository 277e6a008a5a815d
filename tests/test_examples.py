"""The examples of your own training code (`examples/`), run small: a Flax NNX + optax loop on
Fashion-MNIST across the chapter's schedules, and next-token prediction with WSD against cosine."""

import json
import os
import sys

import pytest

from lrjax.data import datasets as data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import fashion_mnist_nnx  # noqa: E402
import next_token  # noqa: E402


def test_next_token_compares_wsd_and_cosine_and_resumes_a_finished_study(tmp_path):
  args = ["--workdir", str(tmp_path), "--seeds", "2", "--epochs", "2", "--steps_per_epoch", "30"]
  results = next_token.main([*args, "--eval_size", "512"])
  assert [r["arm"] for r in results["runs"]][:3] == ["cosine", "wsd_1sqrt", "constant"]
  assert len(results["runs"]) == 6 and not results["failed"]
  for run in results["runs"]:
    assert 1 / 16 < run["final_test_accuracy"] <= 1  # better than guessing among 16 symbols
    assert run["curves"]["epoch"] == [1, 2]
  wsd = json.load(open(tmp_path / "runs" / "wsd_1sqrt" / "seed_0" / "config.json"))
  assert wsd["total_steps"] == 60 and wsd["schedule"]["name"] == "warmup_stable_decay"
  again = next_token.main([*args, "--eval_size", "512"])  # every run finished: none is redone
  assert [r["final_test_loss"] for r in again["runs"]] == [
    r["final_test_loss"] for r in results["runs"]
  ]


@pytest.mark.slow
def test_fashion_mnist_nnx_runs_the_chapter_s_schedules(tmp_path):
  if not os.path.isdir(data.FASHION_MNIST_DIR):
    pytest.skip(f"{data.FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)")
  args = ["--workdir", str(tmp_path), "--seeds", "1", "--epochs", "2", "--limit", "2048"]
  results = fashion_mnist_nnx.main(args)
  assert len(results["runs"]) == 7 and not results["failed"]
  assert all(r["final_test_accuracy"] > 0.5 for r in results["runs"])
  assert all(r["final_validation_accuracy"] is not None for r in results["runs"])
  assert (tmp_path / "results.md").exists() and (tmp_path / "figures").is_dir()
