"""Supernet training presets of the cell spaces (``TrainConfig`` fields over its defaults,
which are the paper's NB201 settings, Table A13). The toy space uses the same ones.

- ``paper``: the paper's NB201 setting: C=16, N=5, batch 512, 1000 epochs on all 40,000
  training images (80% of CIFAR-10 train), lr 0.05, patience 30.
- ``cpu-small``: a run that finishes in about 20-25 minutes on 2 CPU cores and gives
  informative scores. Appendix A.1.4 finds channel proxies harmless and layer proxies
  harmful, so channels go first (C=8). Below C=8 a step is no cheaper (C=4 saves ~12%:
  per-op overhead dominates on CPU), and what a supernet needs is steps, i.e. sampled
  architectures: the first try (C=8, N=5, batch 128, 10k images, 60 epochs = 4,740 steps)
  ended at train loss 1.98 with OS Kendall tau ~0 on 300 deiso NB201 archs (the early
  complexity bias of Sec. 5.1), and lr 0.0125 / 0.025 learnt no faster. So the cells go
  from 5 to 3 per stage (-35% step time) and the batch to 64: 313 steps/epoch on a fixed
  20,000-image subset, 50 epochs = 15,650 steps at ~0.06 s (1 thread). Measured on a
  loaded 2-core machine, 1 thread: 21 minutes, train loss 1.73, OS tau vs CIFAR-10 test
  accuracy at epochs 30/40/50: accuracy 0.25/0.45/0.40, -loss 0.46/0.52/0.48, -loss of
  the mean of the last 3 checkpoints 0.59 (300 deiso archs, 2 validation batches of 128).
  Patience 5 (the loss still falls at the end; it only guards a plateau), checkpoints
  every 5 epochs for temporal ensembles (Sec. 6.1).
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 1000, "c": 16, "n": 5, "batch_size": 512, "checkpoint_every": 100},
    "cpu-small": {
        "epochs": 50, "c": 8, "n": 3, "batch_size": 64, "train_images": 20_000,
        "lr_patience": 5, "checkpoint_every": 5,
    },
}  # fmt: skip
