"""Schema migrations. Each entry runs once, in order, inside a transaction, and is
recorded in ``schema_migrations``; never edit a released migration, append a new one.

Before migrating (or reading) a file, ``check_schema`` decides whether it is ours to
touch: an estbench store of this or an older schema, or an empty DuckDB file. A store
made by a newer estbench, and a DuckDB file that holds someone else's tables, are
refused and left byte-for-byte as they were (the latter unless ``--init``)."""

from __future__ import annotations

from estbench.errors import StoreError

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial schema: archs, metrics, truth, estimators, configs, runs, scores, score_mean",
        """
        CREATE TABLE archs (
            space VARCHAR NOT NULL, arch_id INTEGER NOT NULL, arch_str VARCHAR NOT NULL,
            iso_key VARCHAR NOT NULL, comp_key VARCHAR NOT NULL, degenerate BOOLEAN NOT NULL,
            PRIMARY KEY (space, arch_id));
        CREATE TABLE metrics (
            space VARCHAR NOT NULL, metric VARCHAR NOT NULL, epoch INTEGER, seed_mean BOOLEAN,
            higher_is_better BOOLEAN NOT NULL DEFAULT TRUE, source VARCHAR, description VARCHAR,
            loaded_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (space, metric));
        CREATE TABLE truth (
            space VARCHAR NOT NULL, arch_id INTEGER NOT NULL, metric VARCHAR NOT NULL, value DOUBLE,
            PRIMARY KEY (space, arch_id, metric));
        CREATE TABLE estimators (
            name VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, higher_is_better BOOLEAN NOT NULL,
            description VARCHAR);
        CREATE TABLE configs (
            config_hash VARCHAR PRIMARY KEY, estimator VARCHAR NOT NULL, config VARCHAR NOT NULL,
            created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, space VARCHAR, name VARCHAR,
            config VARCHAR, status VARCHAR NOT NULL, started_at TIMESTAMP DEFAULT current_timestamp,
            finished_at TIMESTAMP, n_written BIGINT DEFAULT 0, host VARCHAR, estbench_version VARCHAR);
        CREATE TABLE scores (
            space VARCHAR NOT NULL, arch_id INTEGER NOT NULL, estimator VARCHAR NOT NULL,
            config_hash VARCHAR NOT NULL, epoch INTEGER NOT NULL, seed INTEGER NOT NULL,
            batch INTEGER NOT NULL, value DOUBLE, status VARCHAR NOT NULL, detail VARCHAR,
            elapsed_s DOUBLE, run_id VARCHAR,
            PRIMARY KEY (space, arch_id, estimator, config_hash, epoch, seed, batch));
        CREATE VIEW score_mean AS
            SELECT space, arch_id, estimator, config_hash, epoch, seed,
                   avg(value) FILTER (WHERE status = 'ok') AS value,
                   count(*) AS n_batches,
                   count(*) FILTER (WHERE status <> 'ok') AS n_failed,
                   sum(elapsed_s) AS elapsed_s
            FROM scores GROUP BY space, arch_id, estimator, config_hash, epoch, seed;
        """,
    ),
    (
        2,
        "one-shot runs: train_epochs, checkpoints, configs.label, view score_seed_mean",
        """
        ALTER TABLE configs ADD COLUMN label VARCHAR;
        CREATE TABLE train_epochs (
            space VARCHAR NOT NULL, run_name VARCHAR NOT NULL, epoch INTEGER NOT NULL,
            train_loss DOUBLE, lr DOUBLE, seconds DOUBLE, steps INTEGER,
            PRIMARY KEY (space, run_name, epoch));
        CREATE TABLE checkpoints (
            space VARCHAR NOT NULL, run_name VARCHAR NOT NULL, epoch INTEGER NOT NULL,
            path VARCHAR NOT NULL, written_at TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (space, run_name, epoch));
        CREATE VIEW score_seed_mean AS
            SELECT space, arch_id, estimator, config_hash, epoch,
                   avg(value) AS value, count(value) AS n_seeds
            FROM score_mean GROUP BY space, arch_id, estimator, config_hash, epoch;
        """,
    ),
    (
        3,
        "deterministic score_mean / score_seed_mean (ordered averages); configs.config as JSON",
        """
        DROP VIEW score_seed_mean;
        DROP VIEW score_mean;
        ALTER TABLE configs ALTER config TYPE JSON;
        CREATE VIEW score_mean AS
            SELECT space, arch_id, estimator, config_hash, epoch, seed,
                   list_avg(list(value ORDER BY batch) FILTER (WHERE status = 'ok')) AS value,
                   count(*) AS n_batches,
                   count(*) FILTER (WHERE status <> 'ok') AS n_failed,
                   list_sum(list(elapsed_s ORDER BY batch)) AS elapsed_s
            FROM scores GROUP BY space, arch_id, estimator, config_hash, epoch, seed;
        CREATE VIEW score_seed_mean AS
            SELECT space, arch_id, estimator, config_hash, epoch,
                   list_avg(list(value ORDER BY seed)) AS value, count(value) AS n_seeds
            FROM score_mean GROUP BY space, arch_id, estimator, config_hash, epoch;
        """,
    ),
    (
        4,
        "runs: threads (torch CPU threads of the run) and pid (its process, to tell a killed run)",
        """
        ALTER TABLE runs ADD COLUMN threads INTEGER;
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        """,
    ),
    (
        5,
        "vote is the paper's pairwise majority (Copeland) now: stored vote rows (a Borda count) become vote_borda",
        # Every vote row of schema <= 4 was a Borda count, whose rule is vote_borda now. Its
        # config hash was config_hash({"estimator": "vote", **settings}), which the new
        # vote_borda would not compute, so a rescore would add a second config of the same
        # settings beside the renamed one. The hash is therefore recomputed here, in SQL,
        # exactly as config.config_hash({"estimator": "vote_borda", **settings}) does: SHA-1
        # of the canonical (sorted keys, no spaces) JSON. Every released vote config has
        # exactly the keys "experts" and "space" (stored sorted, by json.dumps), and
        # "estimator" sorts before both, so the canonical JSON is '{"estimator":"vote_borda",'
        # followed by the minified stored JSON without its "{" (tests/test_vote.py checks it
        # against config_hash). A rescore of vote_borda then finds its own hash and replaces
        # the family's rows. The run rows that wrote them are renamed alike.
        """
        CREATE TEMP TABLE vote_rehash AS
            SELECT config_hash AS old_hash,
                   substr(sha1('{"estimator":"vote_borda",' || substr(CAST(json(config) AS VARCHAR), 2)), 1, 12)
                       AS new_hash
            FROM configs WHERE estimator = 'vote';
        UPDATE scores SET estimator = 'vote_borda', config_hash = m.new_hash FROM vote_rehash m
            WHERE scores.estimator = 'vote' AND scores.config_hash = m.old_hash;
        UPDATE scores SET estimator = 'vote_borda' WHERE estimator = 'vote';
        UPDATE configs SET estimator = 'vote_borda', config_hash = m.new_hash FROM vote_rehash m
            WHERE configs.config_hash = m.old_hash;
        UPDATE runs SET name = 'vote_borda', config = replace(config, m.old_hash, m.new_hash) FROM vote_rehash m
            WHERE runs.kind = 'score' AND runs.name = 'vote'
              AND json_extract_string(runs.config, '$.config_hash') = m.old_hash;
        UPDATE runs SET name = 'vote_borda' WHERE kind = 'score' AND name = 'vote';
        UPDATE estimators SET name = 'vote_borda' WHERE name = 'vote';
        DROP TABLE vote_rehash;
        """,
    ),
    (
        6,
        "variance probes: forgetting (train --probe-forgetting) and gradsim (score --gradsim)",
        """
        CREATE TABLE forgetting (
            space VARCHAR NOT NULL, run_name VARCHAR NOT NULL, epoch INTEGER NOT NULL,
            arch_id INTEGER NOT NULL, step INTEGER NOT NULL,
            acc_after_step DOUBLE, acc_after_epoch DOUBLE,
            PRIMARY KEY (space, run_name, epoch, arch_id, step));
        CREATE TABLE gradsim (
            space VARCHAR NOT NULL, run_name VARCHAR NOT NULL, epoch INTEGER NOT NULL,
            config_hash VARCHAR NOT NULL, pair INTEGER NOT NULL, arch_a INTEGER NOT NULL,
            arch_b INTEGER NOT NULL, layer VARCHAR NOT NULL, cosine DOUBLE,
            PRIMARY KEY (space, run_name, epoch, config_hash, pair, layer));
        """,
    ),
    (
        7,
        "metrics.surrogate: a metric predicted by a surrogate model (NB301), not measured",
        """
        ALTER TABLE metrics ADD COLUMN surrogate BOOLEAN NOT NULL DEFAULT FALSE;
        """,
    ),
    (
        8,
        "score_arch: the per-(arch, seed) batch means as a table kept by every score write; score_mean reads it",
        # At the full protocol's 10^7-10^8 score rows, averaging the batches in key order on
        # every analysis (the ordered list_avg of migration 3) was most of a criteria run.
        # The store keeps the averages instead: every write of scores refreshes the rows of
        # the keys it touched (store.means), and Store.migrate fills the table from the
        # scores once, after this migration. Rows are clustered by group, as scores are.
        """
        DROP VIEW score_seed_mean;
        DROP VIEW score_mean;
        CREATE TABLE score_arch (
            space VARCHAR NOT NULL, arch_id INTEGER NOT NULL, estimator VARCHAR NOT NULL,
            config_hash VARCHAR NOT NULL, epoch INTEGER NOT NULL, seed INTEGER NOT NULL,
            value DOUBLE, n_batches BIGINT NOT NULL, n_failed BIGINT NOT NULL, n_nonfinite BIGINT NOT NULL,
            elapsed_s DOUBLE);
        CREATE VIEW score_mean AS
            SELECT space, arch_id, estimator, config_hash, epoch, seed, value, n_batches,
                   n_failed + n_nonfinite AS n_failed, elapsed_s
            FROM score_arch;
        CREATE VIEW score_seed_mean AS
            SELECT space, arch_id, estimator, config_hash, epoch,
                   list_avg(list(value ORDER BY seed)) AS value, count(value) AS n_seeds
            FROM score_arch GROUP BY space, arch_id, estimator, config_hash, epoch;
        """,
    ),
]
# The first schema with the score_arch table that every score write keeps current.
MEANS_VERSION = 8


def schema_state(con) -> tuple[int | None, list[str]]:
    """(schema version, every table and view of the file): the version is None when the
    file has no ``schema_migrations`` table (an empty file, or not an estbench store)."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT CASE WHEN table_schema = 'main' THEN table_name ELSE table_schema || '.' || table_name END "
            "FROM information_schema.tables WHERE table_catalog = current_database() ORDER BY 1"
        ).fetchall()
    ]
    if "schema_migrations" not in names:
        return None, names
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0], names


def check_schema(path: str, con, latest: int, writable: bool, init: bool = False, export: bool = False) -> int | None:
    """The file's schema version, after refusing what this estbench must not touch
    (``export``: ``path`` is a Parquet export, read as a store)."""
    version, names = schema_state(con)
    if version is None and names and not (writable and init):
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        fix = (
            "use another --store, or pass --init to add estbench's tables to it" if writable else "use another --store"
        )
        raise StoreError(f"{path} is a DuckDB database but not an estbench store (tables: {shown}); {fix}")
    if version is None and not writable:
        raise StoreError(
            f"{path} is an empty DuckDB file; create the store with `estbench truth load` or `estbench score`"
        )
    if version is not None and version > latest:
        raise StoreError(
            f"{path} was made by a newer estbench (schema {version}, this estbench knows {latest}); "
            "upgrade estbench to use it (nothing was changed)"
        )
    if version is not None and version < latest and export:
        raise StoreError(
            f"{path}: a Parquet export of schema version {version}, this estbench needs {latest}; "
            "export the store again with this estbench (which migrates it first)"
        )
    if version is not None and version < latest and not writable:
        raise StoreError(
            f"{path}: schema version {version}, this estbench needs {latest}; "
            "open it once with a writing command (e.g. `estbench truth load`) to migrate"
        )
    return version


def verify_readable(con) -> None:
    """Read every block of every table once (DuckDB checks each block's checksum as it
    reads it), so a writer refuses a damaged file before it writes anything into it;
    ~0.2 s for 3M score rows."""
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND NOT temporary ORDER BY 1, 2"
    ).fetchall()
    for schema, table in tables:
        ident = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))  # names from the catalogue
        con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {ident}").fetchall()
