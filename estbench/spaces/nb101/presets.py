"""Supernet training presets of NB1shot-3 (``TrainConfig`` fields over its defaults,
which are the paper's Table A13 values shared by every space: momentum SGD 0.9, weight
decay 5e-4, ReduceLROnPlateau on the training loss with factor 0.5 and patience 30,
dropout 0.1 before the classifier, gradient norm clipped at 5, 80% / 20% split of the
CIFAR-10 training set, seeds 20 / 2020 / 202020).

- ``paper``: the paper's NB101 run: batch 256 and initial lr 0.025 (Table A13's NB101
  column), 1000 epochs with S=1 (Tables A2 / A3), the supernet of the 1shot1 code it
  ran (``examples/research/surgery/nb101/README.md`` of aw_nas: "the results reported
  in our paper are runned using the official codes provided by NB101-1shot1"): 16 stem
  channels, 3 stacks of 3 cells (its ``layers = 9``), affine cell BNs (1shot1's
  ``ConvBnRelu``; aw_nas's own NB101 supernet has them off). Checkpoints every 100
  epochs.
- ``cpu-small``: a run of about 20-25 minutes on 2 CPU cores (1 thread). Channels go
  first (Appendix A.1.4: channel proxies harmless, layer proxies harmful), so the 9
  cells stay and C=8 (a block of stack 3 has 32 channels, a cell 160). Batch 64 on a
  fixed 20,000-image subset: 313 steps per epoch at ~0.22 s (measured, 1 thread, on a
  2-core machine shared with other jobs: ~70 s per epoch). The paper sees NB101's OS
  ranking stop improving after about 20 epochs (Sec. A.1.1: "longer training after the
  first 20 epochs does not improve the ranking quality"; 20 epochs there are 3,120
  steps of 256), so 20 epochs = 6,260 steps of 64 (~23 minutes). lr 0.025 as in the
  paper, cell BNs without affine (estbench's default, the paper's suggestion 6),
  patience 5, checkpoints every 5 epochs for temporal ensembles (Sec. 6.1). Not yet
  validated by a full run against the benchmark's accuracies.
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "epochs": 1000, "c": 16, "n": 3, "batch_size": 256, "lr": 0.025, "bn_affine": True,
        "checkpoint_every": 100,
    },
    "cpu-small": {
        "epochs": 20, "c": 8, "n": 3, "batch_size": 64, "lr": 0.025, "train_images": 20_000,
        "lr_patience": 5, "checkpoint_every": 5,
    },
}  # fmt: skip
