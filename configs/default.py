"""The chapter's experiment: ResNet-50 (CIFAR stem) on CIFAR-10, lr 0.1, 100 epochs, batch 128.

    lrjax train --config default --workdir runs/cifar10_constant

Costs about 39 PFLOP (7.8 GFLOP per training image): minutes per epoch on one modern GPU, days on
a laptop CPU. Other configs import this one and change a few fields.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # Model.
  config.model = "resnet50"  # a built-in name, or your own "package.module:Class"
  config.stem = "cifar"  # 3x3 stride-1 stem without max-pool; "imagenet" for 7x7/2 + max-pool.
  config.half_precision = False  # bfloat16 compute (float32 parameters): for accelerators.
  # Data.
  # A built-in name, any tensorflow-datasets image classification name, or your own loader as
  # "package.module:function" (see lrjax.data.user).
  config.dataset = "cifar10"
  config.data_dir = ""  # "" = the dataset's default place (tfds, or the Debian IDX folder).
  config.train_split = "train"  # the splits of a tensorflow-datasets dataset
  config.test_split = "test"
  # Held out of the training split as validation data (never trained on; the same for every run
  # and seed): what picks a best epoch, a tuned learning rate, a recommendation. 0: none (then
  # nothing is chosen). A dataset with a validation split of its own: 0, and its split is used.
  config.validation_fraction = 0.1
  config.validation_split = ""  # a tensorflow-datasets validation split, e.g. "validation"
  config.train_limit = 0  # train on the first N examples of each epoch's order only; 0 = all.
  config.augment = True  # pad-`pad` random crop + horizontal flip, on the device.
  config.pad = 4
  config.flip = True
  # Optimisation.
  config.optimizer = "sgd"  # or adam, adamw, or from optax.contrib (lrjax.train.optimizers)
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 5e-4  # coupled L2 on kernels (the Keras tutorial's 0.0005)
  config.batch_size = 128
  config.num_epochs = 100
  # An lrjax.from_config dict; durations may be {"epochs": e}, {"steps": s} or {"fraction": f}.
  config.schedule = {"name": "constant", "value": 0.1}
  # Run.
  config.seed = 0
  config.eval_batch_size = 1000
  config.checkpoint_every_epochs = 1
  config.checkpoint_every_steps = 0  # > 0: also save mid-epoch every that many steps.
  config.keep_checkpoints = 2
  config.log_every_steps = 50
  config.progress = True
  config.tensorboard = True
  # Keep test-set predictions at the end of every cycle of a cyclic schedule and report their
  # ensemble (Snapshot Ensembles); costs one test-set pass per cycle.
  config.snapshot_ensemble = False
  # Schedule-free optimizers are evaluated at their averaged weights, with BatchNorm statistics
  # recomputed there on this many training batches.
  config.bn_recompute_batches = 8
  # The runtime: what the process computes with (see lrjax.runtime.spec). Each run records the
  # values it used; a resumed run keeps them.
  config.runtime = ml_collections.ConfigDict()
  config.runtime.convolutions = "auto"  # "onednn", "xla", or "auto": oneDNN where it loads
  config.runtime.threads = 0  # XLA's and oneDNN's thread count (changes bits); 0: CPUs here
  config.runtime.xla_cpu_tuning = True  # multi-output fusion, XLA's own convolution kernels
  config.runtime.keep_freed_memory = True  # malloc keeps freed memory for the next step
  # Fields of your own (your model, dataset or training function may read them); lrjax refuses
  # any other field it does not know, so a typo never trains silently.
  config.user = ml_collections.ConfigDict()
  return config
