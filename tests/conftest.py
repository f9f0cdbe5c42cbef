"""Shared fixtures: the data directory of real clips and models, and a real Mosquitto broker on loopback.

Locally a missing broker, model or clip skips with a reason; under CI (`CI=true`) it fails instead, so a
green CI always means the real parts were exercised.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.capture.sourceurl import data_dir

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Fixtures that bring a real part: a test taking one is an integration test whether or not it says so,
# so `-m "not integration and not slow"` (make test-fast) really leaves them out.
REAL_PARTS = {"shared_dir", "vtest_path", "yolo11_path", "broker", "postgres_server", "postgres"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_PARTS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail under CI, when a real part of the test is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = data_dir()
    require(path.is_dir(), f"data directory {path} is missing (set ROADWATCH_DATA_DIR)")
    return path


def shared_file(shared_dir: Path, rel: str) -> Path:
    path = shared_dir / rel
    require(path.is_file(), f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def vtest_path(shared_dir: Path) -> Path:
    return shared_file(shared_dir, "videos/vtest.avi")


@pytest.fixture(scope="session")
def yolo11_path(shared_dir: Path) -> Path:
    return shared_file(shared_dir, "models/yolo11n_int8.onnx")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Broker:
    """A real Mosquitto on a loopback port that a test may stop and start again (same port, same config)."""

    binary: str
    conf: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    host: str = "127.0.0.1"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def make_broker(tmp: Path, extra_conf: str = "") -> Broker:
    """Write a loopback-only Mosquitto config in `tmp` and return a stopped Broker for it."""
    binary = mosquitto_binary()
    require(binary is not None, "mosquitto is not installed (apt-get install mosquitto)")
    assert binary is not None
    port = free_port()
    conf = tmp / "mosquitto.conf"
    base = (
        f"listener {port} 127.0.0.1\n"
        "persistence false\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        "max_queued_messages 100000\n"
    )
    if "allow_anonymous" not in extra_conf:
        base += "allow_anonymous true\n"
    conf.write_text(base + extra_conf, encoding="utf-8")
    return Broker(binary=binary, conf=conf, port=port, log=tmp / "mosquitto.log")


MOSQUITTO_DIR = Path(__file__).resolve().parents[1] / "configs" / "mosquitto"


def shipped_listener_settings() -> str:
    """The per-listener lines of the shipped mosquitto.conf (identity: client id = user name), to put
    under a test listener so tests run the broker as shipped."""
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    return "".join(sorted({ln + "\n" for ln in conf if ln.startswith("use_username_as_clientid")}))


def make_secure_broker(tmp: Path, users: dict[str, str], extra_conf: str = "") -> Broker:
    """A stopped Mosquitto as shipped: password file for `users`, the shipped ACL and listener identity."""
    tool = shutil.which("mosquitto_passwd")
    require(tool is not None, "mosquitto_passwd is not installed")
    assert tool is not None
    passwd = tmp / "passwd"
    for i, (user, pw) in enumerate(users.items()):
        subprocess.run([tool, *(["-c"] if i == 0 else []), "-b", str(passwd), user, pw], check=True)
    # `user` keeps a root-run mosquitto from dropping to a user that cannot read the temporary files.
    return make_broker(
        tmp,
        shipped_listener_settings()
        + f"allow_anonymous false\npassword_file {passwd}\nacl_file {MOSQUITTO_DIR / 'acl'}\n"
        + f"user {getpass.getuser()}\n{extra_conf}",
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh anonymous Mosquitto on a free loopback port, stopped after the test."""
    b = make_broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return dirs[-1].parent if dirs else None


@dataclass
class Postgres:
    """A private PostgreSQL server on a free loopback port; TCP logins need `password` (scram-sha-256)."""

    bin_dir: Path
    root: Path
    port: int
    as_user: list[str]  # `runuser -u nobody --` under root: PostgreSQL refuses to run as root
    user: str = "roadwatch"
    password: str = "roadwatch-test-pw"
    host: str = "127.0.0.1"
    _created: int = 0

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.decode(errors='replace')}")

    def start(self) -> None:
        data = self.root / "data"
        if not data.exists():
            pwfile = self.root / "pw"
            pwfile.write_text(self.password + "\n", encoding="utf-8")
            self._chown(pwfile)
            self._run(
                str(self.bin_dir / "initdb"), "-D", str(data), "-U", self.user, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--locale=C.UTF-8", "-E", "UTF8",
                "--no-sync",
            )  # fmt: skip
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses={self.host}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.root / "log")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-l", log, "-w", "-o", opts, "start")

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def _chown(self, path: Path) -> None:
        if self.as_user:
            shutil.chown(path, user=self.as_user[2])

    def url(self, dbname: str) -> str:
        """A store URL without the password (the aggregator takes it from a secret)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A fresh, empty place for a store; returns its URL.

        A schema in one shared database, chosen by the URL's search_path: CREATE DATABASE copies a
        template (a fifth of a second each), a schema costs nothing.
        """
        import psycopg

        self._created += 1
        name = f"t{os.getpid()}_{self._created}"
        with psycopg.connect(self.url("postgres"), password=self.password, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}".encode())
        return self.url("postgres") + f"?options=-csearch_path%3D{name}"


def make_postgres(tmp: Path) -> Postgres:
    """A stopped private PostgreSQL server whose files live under `tmp` (made readable for its user)."""
    bin_dir = postgres_bin_dir()
    require(bin_dir is not None, "PostgreSQL server is not installed (apt-get install postgresql)")
    assert bin_dir is not None
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    tmp.mkdir(parents=True, exist_ok=True)
    pg = Postgres(bin_dir=bin_dir, root=tmp, port=free_port(), as_user=as_user)
    pg._chown(tmp)
    return pg


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL server for the session (initdb costs about a second); tests each get a database."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="roadwatch-pg-"))  # not under pytest's root-only tmp directory
    try:
        pg = make_postgres(root)
        pg.start()
        try:
            yield pg
        finally:
            pg.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: Postgres) -> str:
    """The URL of a fresh, empty PostgreSQL database (password: `postgres_server.password`)."""
    return postgres_server.create_database()


def make_h264_camera(source: Path, out: Path, vf: str = "fps=10") -> Path:
    """`source` re-encoded as an IP camera sends it: H.264 at 10 fps, a keyframe every second (GOP 10),
    so clips cut on keyframes start within a second of where they should."""
    require(shutil.which("ffmpeg") is not None, "ffmpeg is missing")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-vf", vf, "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "10", "-an", str(out)],
        check=True, timeout=180,
    )  # fmt: skip
    return out
