"""``python -m estbench``: the same app as the ``estbench`` command."""

from estbench.cli import app

if __name__ == "__main__":
    app(prog_name="estbench")
