"""NAS-Bench-301: the DARTS search space (normal + reduction cell, 4 intermediate nodes
with 2 inputs each, 7 ops), its evaluation network, its weight-sharing supernet, and
its truth: NB301 training-data json directories, NASLib's 725-arch table and an ONNX
surrogate (a metric marked surrogate, never mixed with measured truth)."""
