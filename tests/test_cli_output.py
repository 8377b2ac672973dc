"""What the CLI prints (issue 9, item 9): help texts as written (brackets included), a
criteria table that fits a terminal, one line for a query with no rows, and plain
progress lines at least every ``log_every`` seconds while scoring and training."""

import json
import re
import threading
import time

import pytest
import typer

from estbench.cli import app
from estbench.cli.progress import Progress
from estbench.runs.loop import Group, run_job
from estbench.store import ScoreKey, ScoreRow
from estbench.store.store import Store


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    out = []
    for name, cmd in group.commands.items():
        out.append([*prefix, name])
        if hasattr(cmd, "commands"):
            out += command_paths(cmd, (*prefix, name))
    return out


def _click_command(path: list[str]):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _flat(text: str) -> str:
    """Rendered help without box drawing and line breaks: one space between words."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


COMMANDS = command_paths(typer.main.get_command(app))


@pytest.mark.parametrize("path", [[], *COMMANDS], ids=lambda p: " ".join(p) or "estbench")
def test_help_keeps_every_bracketed_text(runner, path):
    cmd = _click_command(path)
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    wanted = {" ".join(m.split()) for t in texts for m in re.findall(r"\[[^\]]*\]", t.replace("\\[", "["))}
    r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert r.exit_code == 0, r.output
    shown = _flat(r.output)
    missing = sorted(w for w in wanted if w not in shown)
    assert not missing, f"estbench {' '.join(path)} --help lost {missing}"


def test_help_examples_of_the_issue(runner):
    shown = _flat(runner.invoke(app, ["score", "--help"], env={"COLUMNS": "200"}).output)
    assert "DuckDB store file [default: estbench.duckdb]." in shown
    assert "sample:N[@SEED]" in shown
    assert "[structural 5000, zero-shot 20, one-shot 100]" in shown


# ---- criteria / report tables ---------------------------------------------------------
def _criteria(runner, store, *args):
    return runner.invoke(app, ["criteria", "--space", "toy", "--store", store, *args])


def test_criteria_table_fits_160_columns(runner, toy_store):
    from estbench.report.render import render
    from estbench.report.tables import criteria_brief_rows

    r = _criteria(runner, toy_store)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    header = next(line for line in lines if "estimator" in line)
    for col in ("estimator", "points", "excluded", "s/arch", "kd", "spearman", "p_top@5%", "p_bottom@5%", "br@5%"):
        assert f" {col} " in header, header
    assert max(map(len, lines)) <= 160 and "…" not in r.output
    # long labels (config and epoch) still fit a 160-column terminal, cut nowhere
    from estbench.analysis.evaluate import GroupCriteria

    values = {"n": 6466, "kd": 0.5, "spearman": 0.7}
    values.update({f"{c}@5%": 0.25 for c in ("p_top", "p_bottom", "br", "wr")})
    groups = [
        GroupCriteria("relu_logdet", h, e, values, label=f"uniform-supernet-seed-{h}") for h in "ab" for e in (40, 50)
    ]
    text = render(*criteria_brief_rows(groups), "table", title="t", width=160)
    assert "…" not in text and "relu_logdet [uniform-supernet-seed-a] @ep40" in text


def test_criteria_all_columns_and_machine_formats(runner, toy_store):
    full = json.loads(_criteria(runner, toy_store, "-f", "json").output)
    assert len(full[0]) == 40 and {"config_hash", "lc", "mean", "wr@50%", "p_top@0.1%", "threads"} <= set(full[0])
    csv_header = _criteria(runner, toy_store, "-f", "csv").output.splitlines()[0].split(",")
    assert csv_header == list(full[0])
    r = _criteria(runner, toy_store, "--all-columns", "-f", "markdown")
    assert r.output.splitlines()[0].count("|") == 41
    r = _criteria(runner, toy_store, "--k", "10%", "--k", "1%", "-f", "markdown")
    header = r.output.splitlines()[0]
    assert "p_top@10%" in header and "wr@1%" in header and "p_top@5%" not in header and "config_hash" not in header


@pytest.mark.parametrize("command", ["criteria", "report"])
@pytest.mark.parametrize("args", [["--epoch", "99"], ["--seed", "7"]])
def test_no_matching_rows_is_one_line(runner, toy_store, command, args):
    r = runner.invoke(app, [command, "--space", "toy", "--store", toy_store, *args])
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: nothing to show: no scores"), r.output
    assert ("epoch 99" if "--epoch" in args else "seed 7") in lines[0] and "scored epochs: 0" in lines[0]


# ---- progress without a terminal ------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorded(Progress):
    """Plain lines with the (fake) time they were printed at."""

    def line(self, text: str) -> None:
        self.printed.append((self.clock(), text))
        super().line(text)


def _progress(clock) -> Recorded:
    prog = Recorded(clock)
    prog.printed = []
    return prog


class SlowJob:
    """40 archs of one key, each taking 7 (fake) seconds."""

    name, config, chunk_size = "slow", {}, 20

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.key = clock, ScoreKey("toy", "params", "h")

    def groups(self) -> list[Group]:
        return [Group("slow task", [self.key])]

    def prepare(self, group: Group) -> None:
        pass

    def compute(self, group, arch_id, keys, run_id):
        self.clock.now += 7.0
        return [ScoreRow.of(keys[0], arch_id, 0, 1.0, 7.0, run_id, None)]


def test_scoring_prints_a_line_every_30_seconds(capsys):
    clock = FakeClock()
    with _progress(clock) as prog:
        assert prog.plain
        run_job(Store(":memory:"), "toy", SlowJob(clock), list(range(40)), prog)
    times = [1000.0] + [t for t, _ in prog.printed]  # from the start
    assert prog.printed[-1][1].startswith("slow task: 40/40") and times[-1] - times[0] == 280
    assert max(b - a for a, b in zip(times, times[1:])) <= 30 + 7
    assert len(times) >= 280 // 37 and "slow task: 40/40" in capsys.readouterr().err


def test_a_long_silence_gets_a_heartbeat(capsys):
    """One architecture (or step) that takes longer than log_every: the last state again."""
    prog = Progress()
    prog.log_every = 0.2
    with prog:
        prog("one slow arch", 0, 2)
        deadline, err = time.monotonic() + 5, ""
        while "still working" not in err:
            assert time.monotonic() < deadline, f"no heartbeat line in {err!r}"
            time.sleep(0.05)
            err += capsys.readouterr().err
    assert "one slow arch: 0/2 (still working, " in err
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name == "estbench-progress" and t.is_alive()]


def test_training_prints_steps_every_30_seconds():
    from estbench.estimators.oneshot.train import EpochStats

    clock = FakeClock()
    with _progress(clock) as prog:
        prog.training(2, 0.05)
        for epoch in (1, 2):
            for step in range(100):
                clock.now += 1.0
                prog.on_step(epoch, step, 2.0)
            prog.on_epoch(EpochStats(epoch, 2.0, 0.05, 100.0, 100))
    lines = [text for _, text in prog.printed]
    steps = [x for x in lines if ", step " in x]
    assert len(steps) >= 6 and steps[0].startswith("epoch 1/2, step 30: loss 2.0000")
    assert any(x.startswith("epoch 2/2, step ") and "/100:" in x for x in steps)  # steps per epoch once known
    assert "epoch 1/2: loss 2.0000 lr 0.05 (100.0s)" in lines
    times = [t for t, _ in prog.printed]
    assert max(b - a for a, b in zip(times, times[1:])) <= 30


def test_table_title_keeps_brackets():
    from estbench.report.render import render

    text = render(
        ["a long column name, wider than the title"], [[1]], "table", title="os_acc [ens 5] vs c10", width=160
    )
    assert "os_acc [ens 5] vs c10" in text
