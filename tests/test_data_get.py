"""`estbench data get` end to end against a local HTTP server on 127.0.0.1 serving a
small CIFAR-10 fixture archive: installed and used by a zero-shot run; a wrong checksum
refused with nothing left in place; a server that dies mid-way, then a rerun that
resumes with a Range request."""

import dataclasses
import hashlib
import http.server
import io
import json
import tarfile
import threading

import pytest
from tests_support import write_fake_cifar

from estbench.cli import app
from estbench.data import catalog


class Server:
    """Serves ``blob`` at any path; ``cut_after`` bytes then closes (a dying server)."""

    def __init__(self, blob: bytes):
        self.blob, self.cut_after, self.ranges = blob, None, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                start = 0
                if rng := self.headers.get("Range"):
                    start = int(rng.split("=")[1].split("-")[0])
                outer.ranges.append(start)
                body = outer.blob[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.blob) - 1}/{len(outer.blob)}")
                self.end_headers()
                if outer.cut_after is not None:
                    self.wfile.write(body[: outer.cut_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the server dies mid-way
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def archive(tmp_path):
    src = write_fake_cifar(tmp_path / "src", n_per_batch=40)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buf.getvalue()


@pytest.fixture
def serve(monkeypatch, archive):
    servers = []

    def start(blob=archive, expected=archive):
        server = Server(blob)
        servers.append(server)
        monkeypatch.setenv("ESTBENCH_MIRROR", server.url)
        entry = dataclasses.replace(
            catalog.REMOTES["cifar10"], size=len(expected), checksum=hashlib.md5(expected).hexdigest()
        )
        monkeypatch.setitem(catalog.REMOTES, "cifar10", entry)
        return server

    yield start
    for s in servers:
        s.close()


def test_get_installs_and_a_zero_shot_run_uses_it(runner, serve, tmp_path):
    serve()
    data = tmp_path / "mydata"
    r = runner.invoke(app, ["data", "get", "cifar10", "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert (data / "cifar-10-batches-py" / "data_batch_1").is_file()
    assert not (data / "cifar-10-python.tar.gz").exists() and not list(data.glob("*.part"))
    r = runner.invoke(app, ["data", "list", "--data-dir", str(data), "-f", "json"])
    listed = {row["name"]: row for row in json.loads(r.stdout)}
    assert listed["cifar10"]["status"] == "present" and str(data) in listed["cifar10"]["where"]
    store = str(tmp_path / "s.duckdb")
    zse = ["--zse", "snip", "--batch-size", "4", "--batches", "1", "--archs", "0:3", "--data-dir", str(data)]
    r = runner.invoke(app, ["score", "--space", "toy", *zse, "--store", store])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["sql", "SELECT config->>'input' AS input FROM configs WHERE estimator = 'snip'",
                            "--store", store, "-f", "json"])  # fmt: skip
    assert json.loads(r.stdout) == [{"input": "cifar10-train[cifar-10-batches-py]@0"}]
    r = runner.invoke(app, ["data", "get", "cifar10", "--data-dir", str(data)])
    assert r.exit_code == 0 and "already present" in r.output


def test_wrong_checksum_is_refused_and_nothing_is_left(runner, serve, archive, tmp_path):
    serve(blob=archive[:-10] + b"0123456789")
    data = tmp_path / "mydata"
    r = runner.invoke(app, ["data", "get", "cifar10", "--data-dir", str(data)])
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "failed verification" in lines[0] and "by hand" in lines[0]
    assert not [p for p in data.rglob("*")], list(data.rglob("*"))


def test_a_download_cut_mid_way_resumes(runner, serve, archive, tmp_path):
    server = serve()
    server.cut_after = len(archive) // 3
    data = tmp_path / "mydata"
    r = runner.invoke(app, ["data", "get", "cifar10", "--data-dir", str(data)])
    assert r.exit_code == 1 and "a rerun resumes" in r.output, r.output
    part = data / "cifar-10-python.tar.gz.part"
    assert part.stat().st_size == len(archive) // 3 and not (data / "cifar-10-batches-py").exists()
    server.cut_after = None
    r = runner.invoke(app, ["data", "get", "cifar10", "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert server.ranges == [0, len(archive) // 3]  # the rerun asked only for the rest
    assert (data / "cifar-10-batches-py" / "test_batch").is_file() and not part.exists()


def test_offline_is_one_line_saying_what_to_do(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("ESTBENCH_MIRROR", "http://127.0.0.1:9")  # nothing listens on the discard port
    r = runner.invoke(app, ["data", "get", "cifar10", "--data-dir", str(tmp_path / "d")])
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cannot download cifar10" in lines[0] and "cifar-10-python.tar.gz" in lines[0]


def test_unknown_name(runner):
    r = runner.invoke(app, ["data", "get", "cifar1"])
    assert r.exit_code == 2 and "Did you mean cifar10" in r.output
