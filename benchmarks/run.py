"""Runs the benchmark suite and writes benchmarks/results.json and benchmarks/results.md.

    python benchmarks/run.py            # about 3 minutes on two CPU cores; PyTorch optional

Every figure is a ratio of two timings taken side by side in this one process.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys

import jax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import schedules  # noqa: E402
import torch_compare  # noqa: E402
import training  # noqa: E402

TARGETS = {"schedule_vs_optax": 1.05, "schedule_in_step": 1.02, "host_overhead": 1.05}


def _mark(value: float, target: float) -> str:
  return "yes" if value <= target else "**no**"


def markdown(results: dict) -> str:
  lines = [
    f"Measured {results['date']} on {results['machine']} (jax {results['jax']}, "
    f"{results['devices']}).",
    "",
    "| schedule | lrjax / optax, 10^6 steps at once | lrjax / optax, 10^5 calls in fori_loop "
    "| same, lrjax schedule as a jit argument | lrjax / constant lr, in the train step |",
    "|---|---|---|---|---|",
  ]
  in_step = results["schedule_in_step"]["ratios"]
  for name, row in results["schedule_vs_optax"].items():
    lines.append(
      f"| {name} | {row['vectorised_ratio']:.3f} | {row['scalar_loop_ratio']:.3f} | "
      f"{row['as_argument_vectorised_ratio']:.2f} / {row['as_argument_scalar_loop_ratio']:.2f} "
      f"| {in_step.get(name, float('nan')):.3f} |"
    )
  c = results["compilations_and_overhead"]
  lines += [
    "",
    f"Targets: <= {TARGETS['schedule_vs_optax']} against optax, <= "
    f"{TARGETS['schedule_in_step']} inside the step (constant-lr step: "
    f"{results['schedule_in_step']['constant_step_ms']:.1f} ms, {c['model']}, batch 128).",
    "",
    "| figure | value | target | met |",
    "|---|---|---|---|",
    f"| train-step compilations, 3 epochs, lr changing every step | "
    f"{c['first_run_compilations']} | 1 | {_mark(c['first_run_compilations'], 1)} |",
    f"| new compilations of a 2nd run differing only in schedule values | "
    f"{c['second_run_new_compilations']} | 0 | {_mark(c['second_run_new_compilations'], 0)} |",
    f"| epoch wall time / (steps x device step time) | {c['host_overhead_ratio']:.3f} "
    f"({c['epoch_seconds']:.2f} s / ({c['steps_per_epoch']} x {c['device_step_ms']:.1f} ms)) | "
    f"{TARGETS['host_overhead']} | {_mark(c['host_overhead_ratio'], TARGETS['host_overhead'])} |",
  ]
  p = results["population"]
  lines += [
    f"| {p['members']} schedules as one vmapped train step / {p['members']} sequential steps "
    f"({p['platform']}) | {p['population_over_sequential']:.2f} ({p['population_ms']:.0f} ms / "
    f"{p['sequential_ms']:.0f} ms) | < 1 to use it | "
    f"{_mark(p['population_over_sequential'], 1.0)} |",
  ]
  t = results["torch"]
  if "skipped" in t:
    lines += ["", f"Throughput against PyTorch: skipped ({t['skipped']})."]
  else:
    lines += [
      "",
      "| train step, batch 128 | lrjax img/s | PyTorch NCHW img/s | PyTorch channels_last img/s "
      "| lrjax / best PyTorch (target >= 1.0) |",
      "|---|---|---|---|---|",
    ]
    for name, row in t.items():
      if isinstance(row, dict):
        lines.append(
          f"| {name} | {row['lrjax_images_per_second']:.0f} | "
          f"{row['torch_nchw_images_per_second']:.0f} | "
          f"{row['torch_channels_last_images_per_second']:.0f} | "
          f"{row['lrjax_over_best_torch']:.2f} |"
        )
  return "\n".join(lines) + "\n"


def main() -> None:
  results = {
    "date": datetime.date.today().isoformat(),
    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    "jax": jax.__version__,
    "devices": ", ".join(sorted({d.device_kind for d in jax.devices()})),
  }
  print("schedules against optax ...", flush=True)
  results["schedule_vs_optax"] = schedules.measure()
  print("schedules inside the train step ...", flush=True)
  results["schedule_in_step"] = training.schedule_in_step()
  print("compilations and host overhead ...", flush=True)
  results["compilations_and_overhead"] = training.compilations_and_overhead()
  print("population (vmapped schedules) against sequential ...", flush=True)
  results["population"] = training.population()
  print("throughput against PyTorch ...", flush=True)
  results["torch"] = torch_compare.measure()
  with open(os.path.join(HERE, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  md = markdown(results)
  with open(os.path.join(HERE, "results.md"), "w") as f:
    f.write(md)
  print(md)


if __name__ == "__main__":
  main()
