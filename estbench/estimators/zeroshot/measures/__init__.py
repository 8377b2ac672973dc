"""The built-in zero-shot measures: one module per measure family, each registering its
measures next to their formulas (``register_measure``). Every module of this package is
imported here, so a new measure is one new module; none of them imports torch at import
time (their formulas import it when they run), so registering and listing stay cheap.

References checked: SamsungLabs/zero-cost-nas ``foresight/pruners/measures/*.py``, the
paper's fork zhouzx17/zero-cost-nas for ``relu_logdet``. Only conv and linear weights
are scored (the reference's ``get_layer_metric_array``); a layer whose gradient is
missing (not on any path to the loss) scores 0, as in the reference."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
