"""One-shot estimators (OSEs): a weight-sharing supernet trained once, then every
architecture scored by its accuracy / loss inside it (paper Sec. 2.1, 4.1, 6).
Space-agnostic: the supernet, its samplers and presets come from the search space
(``space.supernet``, ``space.make_sampler``, ``space.presets``; cell spaces: ``spaces/cell/``).

- ``train``: ``TrainConfig``, ``preset_config``, ``train_supernet`` with exact resume
- ``checkpoint``: atomic ``epoch_{E:05d}.pt`` files, ``list_checkpoints``, ``load_checkpoint``
- ``evaluate``: ``os_scores``, ``average_checkpoints`` (temporal ensemble), ``model_from_checkpoint``

Importing this package imports nothing heavy; torch is imported by the submodules."""
