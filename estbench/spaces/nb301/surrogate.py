"""NB301 surrogate truth: the YAHPO Gym ``nb301`` ONNX model (v2) predicting NB301's
validation accuracy, as a truth table marked ``surrogate`` (``truth load``).

The model directory holds ``model_v2.onnx``, ``encoding_v2.json`` (per categorical
parameter its value -> integer code; ``#na#`` for an inactive one) and
``param_set_v2.R`` (the parameter set, an R ``paradox`` ``ParamSet``). The model takes
``x_cat`` int32 [N, 34], the encoded architecture parameters, and ``x_cont`` float32
[N, 1], the epoch (1..98: NB301's logged learning curves have 98 points), and returns
[N, 4]: validation accuracy (a fraction), validation cross-entropy, runtime and one more
target. The column order of ``x_cat`` is the order the parameters are declared in
``param_set_v2.R`` (edge_normal_0..13, edge_reduce_0..13, inputs_node_normal_3..5,
inputs_node_reduce_3..5), neither ``encoding_v2.json``'s key order nor
``config_space_v2.json``'s: with the param-set order the 725 archs of NASLib's table get
Kendall 0.42 / Spearman 0.59 against their measured accuracy at epoch 98 (the figures
YAHPO's model is known for), with the encoding-json order 0.35. The order is read from
the file, so a future version's order comes with it.

The surrogate has no architecture list of its own: ``read_surrogate`` predicts for every
architecture the store holds (``arch_ids``): load measured truth or sample archs first.
onnxruntime is an optional dependency (``pip install 'estbench[nb301]'``), imported
when a surrogate is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from estbench.errors import BadInput, MissingData
from estbench.spaces.nb301 import genotype as gt
from estbench.truth.files import load_json
from estbench.truth.model import MetricInfo, TruthTable

FINAL_EPOCH = 98  # the last epoch of NB301's logged curves: the surrogate's budget range is 1..98
BATCH = 4096  # architectures per session.run
INACTIVE = "#na#"
_COLON = "_COLON_"  # YAHPO's spelling of ":" in parameter names
_PARAM_RE = re.compile(r'Param(\w+)\$new\(\s*"([^"]+)"')
_BOUNDS_RE = r'ParamInt\$new\(\s*"{name}"[^)]*?lower\s*=\s*(\d+)L?[^)]*?upper\s*=\s*(\d+)L?'
INSTALL_HINT = "the NB301 surrogate needs onnxruntime: pip install 'estbench[nb301]'"


def metric_name(epoch: int = FINAL_EPOCH) -> str:
    """``cifar10-valid-surrogate`` (final epoch) or ``cifar10-valid-<E>ep-surrogate``."""
    return f"cifar10-valid{'' if epoch == FINAL_EPOCH else f'-{epoch}ep'}-surrogate"


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BadInput(INSTALL_HINT) from None
    return onnxruntime


def companion_paths(model: Path) -> tuple[Path, Path]:
    """The encoding and parameter-set files beside ``model`` (``model_v2.onnx`` ->
    ``encoding_v2.json``, ``param_set_v2.R``; another name -> the ``_v2`` files)."""
    tag = model.stem[len("model") :] if model.stem.startswith("model") else "_v2"
    return model.with_name(f"encoding{tag}.json"), model.with_name(f"param_set{tag}.R")


# ---- the encoding and the parameter set ---------------------------------------------------


def read_encoding(path: Path) -> dict[str, dict[str, int]]:
    """``encoding_v2.json``: parameter -> {value: integer code}."""
    data = load_json(path, "the NB301 surrogate's value encoding, beside the model")
    ok = (
        isinstance(data, dict)
        and data
        and all(
            isinstance(v, dict) and v and all(isinstance(c, int) and not isinstance(c, bool) for c in v.values())
            for v in data.values()
        )
    )
    if not ok:
        raise BadInput(f"{path}: expected {{parameter: {{value: integer code}}}} (the surrogate's value encoding)")
    return data


def read_param_order(path: Path) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """The parameter names of ``param_set_v2.R`` in declaration order, and the integer
    bounds of its ``ParamInt`` parameters (the epoch)."""
    if not path.is_file():
        raise MissingData(f"{path} does not exist (the NB301 surrogate's parameter set: its input column order)")
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise BadInput(f"{path}: cannot be read ({type(exc).__name__})") from None
    found = _PARAM_RE.findall(text)
    if not found:
        raise BadInput(f'{path}: no Param...$new("NAME", ...) declarations (not a paradox ParamSet file)')
    names = [n for _, n in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadInput(f"{path}: parameter {twice[0]} is declared twice")
    bounds = {}
    for kind, name in found:
        if kind == "Int":
            m = re.search(_BOUNDS_RE.format(name=re.escape(name)), text)
            if m:
                bounds[name] = (int(m.group(1)), int(m.group(2)))
    return names, bounds


class Encoder:
    """Architectures -> the model's ``x_cat`` rows, from the encoding and the order."""

    def __init__(self, encoding: dict[str, dict[str, int]], order: list[str], where: str):
        self.columns = [n for n in order if n in encoding]
        continuous = [n for n in order if n not in encoding]
        unlisted = sorted(set(encoding) - set(order))
        if unlisted:
            raise BadInput(f"{where}: encoded parameter {unlisted[0]} is not in the parameter set")
        if continuous != ["epoch"]:
            raise BadInput(
                f"{where}: expected one continuous parameter, epoch (found {', '.join(continuous) or 'none'})"
            )
        for n in self.columns:
            if INACTIVE not in encoding[n]:
                raise BadInput(f"{where}: parameter {n} has no code for an inactive value ({INACTIVE})")
        self.encoding = encoding

    def row(self, g: gt.Genotype) -> list[int]:
        cfg = {k.replace(":", _COLON): v for k, v in gt.to_config(g).items()}
        stray = [k for k in cfg if k not in self.encoding]
        if stray:
            raise BadInput(f"the surrogate's encoding has no parameter {stray[0]}")
        out = []
        for n in self.columns:
            value = cfg.get(n, INACTIVE)
            code = self.encoding[n].get(value)
            if code is None:
                raise BadInput(f"the surrogate's encoding has no value {value!r} for {n}")
            out.append(code)
        return out


# ---- the model ------------------------------------------------------------------------------


def load_session(path: Path, n_cat: int) -> Any:
    """The onnxruntime session of ``path`` (one CPU thread: predictions are cheap, and
    one thread makes them the same on every machine), its inputs checked."""
    ort = _onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # onnxruntime's warnings are not the user's business
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{path}: not an ONNX model ({first})") from None
    inputs = {i.name: i.shape for i in session.get_inputs()}
    want = {"x_cat": n_cat, "x_cont": 1}
    if set(inputs) != set(want) or any(inputs[k][-1] != n for k, n in want.items()):
        got = ", ".join(f"{k} {v}" for k, v in inputs.items())
        raise BadInput(f"{path}: inputs are {got}; the NB301 surrogate takes x_cat [N, {n_cat}] and x_cont [N, 1]")
    return session


def predict(session: Any, x_cat: np.ndarray, epoch: int, batch: int = BATCH) -> np.ndarray:
    """Validation accuracy (fraction) of every row of ``x_cat`` at ``epoch``."""
    out = []
    for start in range(0, len(x_cat), batch):
        part = x_cat[start : start + batch]
        cont = np.full((len(part), 1), float(epoch), dtype=np.float32)
        y = session.run(None, {"x_cat": part, "x_cont": cont})[0]
        if y.ndim != 2 or y.shape[0] != len(part) or y.shape[1] < 1:
            raise BadInput(f"the surrogate returned shape {list(y.shape)} for {len(part)} architectures")
        out.append(np.asarray(y[:, 0], dtype=np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def read_surrogate(
    path: Path, arch_ids: dict[str, int], metrics: list[str] | None = None, epoch: int = FINAL_EPOCH
) -> TruthTable:
    """``cifar10-valid-surrogate`` (%, the predicted validation accuracy after ``epoch``
    epochs) for every architecture in ``arch_ids``; ``path``: the ``.onnx`` file (or its
    directory), with ``encoding_v2.json`` and ``param_set_v2.R`` beside it."""
    path = Path(path)
    if path.is_dir():
        path = path / "model_v2.onnx"
    if not path.is_file():
        raise MissingData(f"{path} does not exist (the NB301 surrogate: model_v2.onnx with encoding_v2.json and "
                          "param_set_v2.R beside it)")  # fmt: skip
    name = metric_name(epoch)
    if metrics and list(dict.fromkeys(metrics)) != [name]:
        raise BadInput(f"{path}: no metric {', '.join(m for m in metrics if m != name)} (the surrogate gives {name})")
    enc_path, params_path = companion_paths(path)
    order, bounds = read_param_order(params_path)
    encoder = Encoder(read_encoding(enc_path), order, str(params_path))
    lo, hi = bounds.get("epoch", (1, FINAL_EPOCH))
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not lo <= epoch <= hi:
        raise BadInput(f"surrogate epoch {epoch!r}: the model predicts epochs {lo}..{hi}")
    session = load_session(path, len(encoder.columns))  # before the archs: a bad model says so at once
    if not arch_ids:
        raise BadInput(
            "the store holds no nb301 architectures, and the surrogate predicts for the store's: add some first "
            "(truth load of NASLib's table or NB301's json directory, score --archs sample:N, or an arch file)"
        )
    strs = sorted(arch_ids, key=arch_ids.__getitem__)
    rows = []
    for s in strs:
        try:
            rows.append(encoder.row(gt.parse(s)))
        except BadInput as exc:
            raise BadInput(f"{path}: architecture {s[:80]} (id {arch_ids[s]}): {exc}") from None
    acc = predict(session, np.asarray(rows, dtype=np.int32), epoch)
    bad = np.flatnonzero(~np.isfinite(acc) | (acc < 0) | (acc > 1))
    if bad.size:
        k = int(bad[0])
        raise BadInput(f"{path}: predicted accuracy {acc[k]} for {strs[k][:80]} is not a fraction in [0, 1]")
    table = TruthTable([arch_ids[s] for s in strs], strs)
    info = MetricInfo(
        name=name, epoch=epoch, seed_mean=False, source=str(path), surrogate=True,
        description=f"validation accuracy (%) after {epoch} epochs predicted by the YAHPO Gym nb301 ONNX surrogate "
        "(not measured; Kendall 0.42 against NB301's measured accuracy on NASLib's 725 archs)",
    )  # fmt: skip
    table.add(info, [100.0 * float(v) for v in acc])
    return table
