"""Layer-wise learning-rate decay of timm's `param_groups_layer_decay` (BEiT's rule).

For tiny torch modules whose parameter names follow timm's ResNet, ResNetV2 (pre-activation,
with a final norm) and VisionTransformer, each with that timm model's own `group_matcher`
regexes (copied from timm 1.0: `timm/models/resnet.py`, `resnetv2.py`, `vision_transformer.py`),
records the groups that `param_groups_layer_decay` returns (each group's `lr_scale`,
`weight_decay` and parameter names, with the layer id timm's `group_parameters` gives them) for
several `layer_decay` values, and the ViT's parameter shapes. The ResNet stage sizes are those
of lrjax's `tiny`, `resnet20` and `resnet18`, the ResNetV2's those of `preact_resnet_tutorial`.
The parity test is `tests/test_groups.py`.

timm's real `param_groups_layer_decay` runs: `timm.optim`, `timm.models` and `timm.layers` are
imported as bare packages (their `__init__` needs torchvision's compiled ops), and only the
modules it uses are loaded (`timm.models._manipulate.group_parameters`,
`timm.layers.config.use_reentrant_ckpt`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

from peers import common

LAYER_DECAYS = (0.5, 0.75, 0.9, 1.0)
WEIGHT_DECAY = 0.05
RESNET_STAGES = {"tiny": (1, 1), "resnet20": (3, 3, 3), "resnet18": (2, 2, 2, 2)}
PREACT_STAGES = {"preact_resnet_tutorial": (9, 9, 9)}
VIT_DEPTH = 4


def _bare_package(name: str) -> types.ModuleType:
  """Registers package `name` without running its `__init__` (as `common.timm_scheduler`)."""
  if name not in sys.modules:
    spec = importlib.util.find_spec(name)
    module = types.ModuleType(name)
    module.__path__ = list(spec.submodule_search_locations)
    module.__spec__ = spec
    sys.modules[name] = module
  return sys.modules[name]


def timm_param_groups() -> tuple[types.ModuleType, types.ModuleType]:
  """`timm.optim._param_groups` and `timm.models._manipulate`, without torchvision."""
  common.timm_scheduler()  # the bare `timm` package
  layers = _bare_package("timm.layers")
  layers.use_reentrant_ckpt = importlib.import_module("timm.layers.config").use_reentrant_ckpt
  models = _bare_package("timm.models")
  manipulate = importlib.import_module("timm.models._manipulate")
  models.group_parameters = manipulate.group_parameters
  _bare_package("timm.optim")
  return importlib.import_module("timm.optim._param_groups"), manipulate


def _models():
  """The tiny torch modules, by name: `(module, its timm group matcher)`."""
  from torch import nn

  def conv(c_in=2, c_out=2, k=3):
    return nn.Conv2d(c_in, c_out, k, bias=False)

  class Block(nn.Module):  # timm's BasicBlock names
    def __init__(self, project: bool):
      super().__init__()
      self.conv1, self.bn1 = conv(), nn.BatchNorm2d(2)
      self.conv2, self.bn2 = conv(), nn.BatchNorm2d(2)
      if project:
        self.downsample = nn.Sequential(conv(k=1), nn.BatchNorm2d(2))

  class ResNet(nn.Module):
    def __init__(self, stages):
      super().__init__()
      self.conv1, self.bn1 = conv(3, 2), nn.BatchNorm2d(2)
      for s, n in enumerate(stages):
        setattr(self, f"layer{s + 1}", nn.Sequential(*[Block(s > 0 and j == 0) for j in range(n)]))
      self.fc = nn.Linear(2, 3)

    def group_matcher(self, coarse=False):  # timm.models.resnet.ResNet.group_matcher
      return dict(
        stem=r"^conv1|bn1|maxpool", blocks=r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)"
      )

  class PreActBlock(nn.Module):  # timm's PreActBottleneck names
    def __init__(self, project: bool):
      super().__init__()
      self.norm1, self.conv1 = nn.BatchNorm2d(2), conv(k=1)
      self.norm2, self.conv2 = nn.BatchNorm2d(2), conv()
      self.norm3, self.conv3 = nn.BatchNorm2d(2), conv(k=1)
      if project:
        self.downsample = nn.Sequential()
        self.downsample.add_module("conv", conv(k=1))

  class ResNetV2(nn.Module):
    def __init__(self, stages):
      super().__init__()
      self.stem = nn.Sequential()
      self.stem.add_module("norm", nn.BatchNorm2d(3))
      self.stem.add_module("conv", conv(3, 2))
      self.stages = nn.ModuleList()
      for n in stages:
        stage = nn.Module()
        stage.blocks = nn.Sequential(*[PreActBlock(j == 0) for j in range(n)])
        self.stages.append(stage)
      self.norm = nn.BatchNorm2d(2)
      self.head = nn.Sequential()
      self.head.add_module("fc", nn.Linear(2, 3))

    def group_matcher(self, coarse=False):  # timm.models.resnetv2.ResNetV2.group_matcher
      return dict(
        stem=r"^stem",
        blocks=r"^stages\.(\d+)"
        if coarse
        else [(r"^stages\.(\d+)\.blocks\.(\d+)", None), (r"^norm", (99999,))],
      )

  class Attention(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

  class Mlp(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

  class VitBlock(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim)
      self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim)

  class VisionTransformer(nn.Module):
    def __init__(self, depth, dim=4, tokens=5):
      import torch

      super().__init__()
      self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
      self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
      self.patch_embed = nn.Module()
      self.patch_embed.proj = nn.Conv2d(3, dim, 2)
      self.blocks = nn.Sequential(*[VitBlock(dim) for _ in range(depth)])
      self.norm = nn.LayerNorm(dim)
      self.head = nn.Linear(dim, 3)

    def group_matcher(self, coarse=False):  # timm VisionTransformer.group_matcher
      return dict(
        stem=r"^cls_token|reg_token|pos_embed|patch_embed|norm_pre",
        blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))],
      )

  out = {f"resnet-{k}": (ResNet(v), dict(stages=v)) for k, v in RESNET_STAGES.items()}
  out.update({f"resnetv2-{k}": (ResNetV2(v), dict(stages=v)) for k, v in PREACT_STAGES.items()})
  out[f"vit-depth{VIT_DEPTH}"] = (VisionTransformer(VIT_DEPTH), dict(depth=VIT_DEPTH))
  return out


def _case(param_groups, manipulate, name, model, shape, layer_decay, min_scale=0.0) -> dict:
  layer_ids = manipulate.group_parameters(model, model.group_matcher(coarse=False), reverse=True)
  groups = param_groups.param_groups_layer_decay(
    model, weight_decay=WEIGHT_DECAY, layer_decay=layer_decay, min_scale=min_scale
  )
  names = {id(p): n for n, p in model.named_parameters()}
  values = []
  for group in groups:
    params = [names[id(p)] for p in group["params"]]
    (layer,) = {layer_ids[n] for n in params}  # timm names its groups "layer_{id}_..."
    values.append(
      dict(
        layer=layer,
        lr_scale=float(group["lr_scale"]),
        weight_decay=float(group["weight_decay"]),
        params=params,
      )
    )
  suffix = f"-min{min_scale}" if min_scale else ""
  return dict(
    id=f"{name}-d{layer_decay}{suffix}",
    peer="timm.optim.param_groups_layer_decay",
    settings=dict(
      model=name,
      **shape,
      layer_decay=layer_decay,
      weight_decay=WEIGHT_DECAY,
      min_scale=min_scale,
      num_layers=max(layer_ids.values()) + 1,
      shapes={n: list(p.shape) for n, p in model.named_parameters()} if "vit" in name else {},
    ),
    values=values,
  )


def main() -> None:
  param_groups, manipulate = timm_param_groups()
  cases = []
  for name, (model, shape) in _models().items():
    for d in LAYER_DECAYS:
      cases.append(_case(param_groups, manipulate, name, model, shape, d))
  model, shape = _models()["resnet-resnet20"]
  cases.append(_case(param_groups, manipulate, "resnet-resnet20", model, shape, 0.5, 0.1))
  common.write("layer_decay", ("torch", "timm"), cases)
