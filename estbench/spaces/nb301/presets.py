"""Supernet training presets of NB301 (``TrainConfig`` fields over its defaults, which
are the paper's Table A13 values shared by every space: momentum SGD 0.9, weight decay
5e-4, ReduceLROnPlateau on the training loss with factor 0.5 and patience 30, dropout
0.1 before the classifier, gradient norm clipped at 5, 80% / 20% split of the CIFAR-10
training set, seeds 20 / 2020 / 202020).

- ``paper``: the paper's NB301 run. Table A13: "batch size 256 (NB101/NB301)", "initial
  LR ... 0.05 (NB201/NB301/ResNet/ResNeXt)". Epochs: 1500 with S=1 (Table A2: "the
  training epochs for S=1/3/5 and FairNAS on NB301 are 1500/500/300/214 (All have
  similar run time to 1500-epoch training with S=1)"; Sec. 4.1 and Fig. 3 report epochs
  200 and 1000 of the same runs; Table A3's converged run is 3000). The paper gives no
  supernet shape for NB301; its code (aw_nas, ``examples/research/surgery/nb301/
  config.yaml`` and the ``nb301`` search space) trains the DARTS search network with
  ``init_channels: 16``, ``stem_multiplier: 3``, ``num_layers=8``, ``epochs: 1500``,
  cell BNs without affine (``bn_affine=False``), saving every 50 epochs (its README:
  ``--save-every 50``).
- ``cpu-small``: a run of about 20 minutes on one CPU thread (2-core machine). One
  training step (forward + backward + clip + SGD, channels-last, a fresh uniform
  genotype, batch 64, 1 thread, idle machine) measured through the trainer: c=4 n=5
  0.195 s, c=8 n=5 0.35 s; in a bare step loop: c=4 n=5 0.22 s, c=6 n=5 0.32 s, c=8
  n=5 0.41 s, c=4 n=8 0.33 s, c=8 n=8 0.60 s, c=16 n=8 1.25 s (the cost is mostly the
  depthwise convolutions' backward and grows with c: no per-op floor here). A supernet
  needs steps (the cell spaces' cpu-small: 4,740 steps gave OS tau ~0, 15,650 steps
  ~0.5) and channel proxies are harmless while layer proxies hurt (Appendix A.1.4), but
  steps win the trade as on NB201: c=4 and n=5 (cells N R N R N: the DARTS macro with
  one normal cell per stage instead of two), batch 64 on a fixed 20,000-image subset:
  313 steps per epoch, ~61 s, so 20 epochs = 6,260 steps in ~20 minutes (longer on a
  loaded machine). lr 0.0125: the paper's 0.05 scaled linearly from batch 256 to 64;
  measured over 400 steps of uniform sampling (c=4, n=5) the mean training loss of the
  last 50 steps was 2.67 at lr 0.05 (no progress, above chance), 2.13 at 0.025, 2.07 at
  0.0125. Cell BNs without affine (the paper's suggestion 6), patience 5, checkpoints
  every 5 epochs (4 per run) for temporal ensembles (Sec. 6.1). Not yet validated by a
  full run against NB301's accuracies.
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "epochs": 1500, "c": 16, "n": 8, "batch_size": 256, "lr": 0.05, "bn_affine": False,
        "checkpoint_every": 50,
    },
    "cpu-small": {
        "epochs": 20, "c": 4, "n": 5, "batch_size": 64, "lr": 0.0125, "train_images": 20_000,
        "lr_patience": 5, "checkpoint_every": 5,
    },
}  # fmt: skip
