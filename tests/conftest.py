"""Suite-wide test configuration (fixtures live in the test modules that use them)."""

from __future__ import annotations

import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")  # tests never open windows

# CI runs are derandomised so a red build is reproducible; locally hypothesis explores freely.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# --------------------------------------------------------------------------------------------
# A real PostgreSQL server for tests/test_database.py (session scope, started on first use)
# --------------------------------------------------------------------------------------------

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import glob  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """A throw-away PostgreSQL cluster: connection details of its test database ``shop``."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def url(self, query: str = "", *, password: str | None = None) -> str:
        """``postgresql://user:password@host:port/shop`` followed by ``query`` (``?table=...``)."""
        pw = self.password if password is None else password
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{self.dbname}{query}"


def _postgres_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: run `bash scripts/ensure_services.sh"
        " postgres` (installs Debian's postgresql), then rerun the tests"
    )


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server():
    """Start a PostgreSQL cluster in a temporary directory on a free localhost port.

    ``initdb`` + ``pg_ctl start`` as the ``postgres`` system user when the tests run as root (the
    server refuses to run as root), as the current user otherwise; password (SCRAM) auth, so a
    wrong password is really rejected. The database ``shop`` is created empty; the test modules
    load their own tables. The cluster is stopped and removed at the end of the session.
    """
    bindir = _postgres_bin()
    root = tempfile.mkdtemp(prefix="custvalue_pg_")
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, user="postgres")
    datadir = os.path.join(root, "data")
    pwfile = os.path.join(root, "pw")
    user, password = "cvtest", "s3cret-pw"
    with open(pwfile, "w") as fh:
        fh.write(password + "\n")
    if run_as:
        shutil.chown(pwfile, user="postgres")
    subprocess.run(
        [*run_as, f"{bindir}/initdb", "-D", datadir, "-U", user, f"--pwfile={pwfile}",
         "-A", "scram-sha-256", "-E", "UTF8", "--no-instructions"],
        check=True, capture_output=True,
    )
    port = _free_port()
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=32MB"
    log = os.path.join(root, "server.log")
    started = subprocess.run(
        [*run_as, f"{bindir}/pg_ctl", "-D", datadir, "-l", log, "-o", opts, "-w", "-t", "60",
         "start"],
        capture_output=True, text=True,
    )
    if started.returncode != 0:
        with open(log) as fh:
            tail = fh.read()[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start the test PostgreSQL server: {started.stderr}\n{tail}")
    server = PostgresServer("127.0.0.1", port, user, password, "shop")
    try:
        subprocess.run(
            [f"{bindir}/psql" if os.path.exists(f"{bindir}/psql") else "psql",
             "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "postgres", "-v",
             "ON_ERROR_STOP=1", "-c", "CREATE DATABASE shop"],
            check=True, capture_output=True, env={**os.environ, "PGPASSWORD": password},
        )
        yield server
    finally:
        subprocess.run(
            [*run_as, f"{bindir}/pg_ctl", "-D", datadir, "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# One small local Spark session for tests/test_spark.py (session scope, started on first use)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark_session():
    """``local[2]``, 4 shuffle partitions, 1 GB driver heap, UI off; stopped at the end.

    Needs pyspark (the ``spark`` extra, installed by ``make test``) and Java 17
    (``scripts/ensure_services.sh java``); fails with a message naming both when either is missing.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail("pyspark is not installed: pip install -e '.[spark]' (make test installs it)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Java not found: run `bash scripts/ensure_services.sh java` (openjdk-17)")
    from custvalue.spark import local_session

    spark = local_session(2, shuffle_partitions=4, driver_memory="1g", app_name="custvalue-tests")
    yield spark
    spark.stop()
