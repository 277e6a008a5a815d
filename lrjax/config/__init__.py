"""Configs: loaded by name or file with overrides (`loading`), then checked once into typed,
frozen objects that everything below takes: an `Experiment` (one training run,
`lrjax.config.experiment`) or a `Study` (`lrjax.config.study`, with its `Tune`,
`lrjax.config.tune`). Every error is a `ConfigError` naming the field."""

from lrjax.config.checks import ConfigError as ConfigError
from lrjax.config.loading import BUILTIN as BUILTIN
from lrjax.config.loading import builtin_names as builtin_names
from lrjax.config.loading import check_fields as check_fields
from lrjax.config.loading import fields as fields
from lrjax.config.loading import load as load
from lrjax.config.loading import override as override

__all__ = ["ConfigError", "builtin_names", "check_fields", "fields", "load", "override"]
