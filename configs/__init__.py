"""lrjax's built-in experiment and study configs, installed as the `lrjax.configs` package.

One module per config, each with `get_config()` (some take a variant: `chapter:linear`);
variants import `default` and change a few fields. `lrjax --config NAME[:VARIANT]` loads them by
name (`lrjax.config.load`); a config file of yours starts from them with
`from lrjax.configs import default`.
"""
