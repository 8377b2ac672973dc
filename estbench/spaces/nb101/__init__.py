"""NAS-Bench-101: cells (``spec``: strings, pruning, the official module hash,
mutations), NAS-Bench-1shot1 search space 3 (``oneshot3``), the standalone network and
its costs (``network``, ``cost``), the 1shot3 weight-sharing supernet, samplers and
presets (``supernet``, ``samplers``, ``presets``), the official tfrecord and the
partial tables (``tfrecord``, ``truth``, ``truth_tables``); the two search spaces in
``search_space``."""
