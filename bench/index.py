"""The gateway's memory and start time against the size of the results log: results are
written straight to a results topic (1 KB outputs), then a gateway starts on it three
times: with no index file (it builds one), again (it resumes from its stored offsets), and,
as the baseline in the same run, the gateway of ``BASELINE_REV`` (the in-memory index that
rereads the whole topic at every start), exported from git.

``python -m bench index`` runs it on the bench stack's broker at ``SIZES``;
``python -m bench.index --bootstrap HOST:PORT --sizes 10000,1000000`` on any broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from bench.harness import Measurement, median, percentile
from bench.stack import Stack
from pipeline.index import Cursor, Query, queries
from pipeline.index.store import connect
from pipeline.kafka import ensure_topics
from pipeline.records import Position, Result, Status, dumps, utc_now
from pipeline.settings import KafkaSettings, Settings
from pipeline.topics import Topics

SIZES = (10_000, 100_000)
BASELINE_REV = "f1c3d3e"  # main before the on-disk index
BASELINE_UP_TO = 1_000_000  # the old gateway holds every output: past this, skip it
OUTPUT_BYTES = 1024
REPO = Path(__file__).resolve().parents[1]
PORT = 18090
TOKEN = "bench-token-0123456789"


@dataclass(frozen=True)
class Start:
    seconds: float  # from spawn to /healthz answering 200
    rss_mb: float  # resident once ready
    peak_mb: float  # the most it was resident while starting
    read: int | None  # results records read at start (the new gateway says)


def result(n: int, output: bytes) -> bytes:
    return dumps(Result(
        invocation_id=f"bench-{n:08d}", event_id=f"ev-{n:08d}", function=f"fn-{n % 20}",
        status=Status.FAILED if n % 10 == 0 else Status.SUCCEEDED, output=output,
        logs="ran\n", source="bench", queued_at=utc_now(), started_at=utc_now(),
        finished_at=utc_now(), duration_s=0.01, event_position=Position(n % 4, n),
    ).to_dict())


async def fill(kafka: KafkaSettings, count: int) -> float:
    """Write ``count`` Results to the results topic; return the seconds it took."""
    await ensure_topics(kafka, Topics(kafka).core())
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers(), acks=1,
                                linger_ms=20, max_batch_size=1024 * 1024)
    output = b"x" * OUTPUT_BYTES
    started = time.monotonic()
    await producer.start()
    try:
        for chunk in range(0, count, 20_000):
            sent = [await producer.send(Topics(kafka).results, result(n, output),
                                        key=f"bench-{n:08d}".encode())
                    for n in range(chunk, min(count, chunk + 20_000))]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return time.monotonic() - started


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of ``pid``, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def start_gateway(env: dict[str, str], source: Path, log: Path) -> Start:
    """Start a gateway from ``source`` (a checkout), measure it ready, stop it."""
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "pipeline", "gateway"], cwd=source,
                                   env={**env, "PYTHONPATH": str(source)}, stdout=out,
                                   stderr=subprocess.STDOUT)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=5) as http:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the gateway exited: see {log}")
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            seconds = time.monotonic() - started
            rss, peak = _memory_mb(process.pid)
            stats = http.get("/v1/index", headers=headers)
            read = None
            if stats.status_code == 200:
                read = sum(stats.json()["read"].values())
    finally:
        process.terminate()
        process.wait(30)
    return Start(seconds, rss, peak, read)


def query_times_ms(path: Path, count: int) -> list[float]:
    """How long the index's statements take on its file (the gateway runs them on its
    event loop): pages by function, by status, unfiltered and ten pages deep, an event's
    invocations and one lookup, each a few times."""
    db = connect(path, readonly=True)
    try:
        page = queries.page(db, Query(limit=50))
        for _ in range(9):
            page = queries.page(db, Query(limit=50, after=Cursor.decode(page.next_cursor)
                                          if page.next_cursor else None))
        asks = [lambda: queries.page(db, Query(function="fn-3", limit=50)),
                lambda: queries.page(db, Query(status="failed", limit=50)),
                lambda: queries.page(db, Query(limit=50, after=Cursor.decode(
                    page.next_cursor or ""))),
                lambda: queries.for_event(db, f"ev-{count // 2:08d}"),
                lambda: queries.find(db, f"bench-{count // 3:08d}")]
        times = []
        for _ in range(20):
            for ask in asks:
                started = time.perf_counter()
                ask()
                times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        db.close()


def baseline_checkout(out: Path) -> Path:
    """The gateway of ``BASELINE_REV``, exported from git into ``out``."""
    target = out / f"baseline-{BASELINE_REV}"
    if not (target / "pipeline").is_dir():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE_REV, "pipeline",
                                  "connectors", "functions"], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


def measure_size(bootstrap: str, count: int, out: Path) -> list[Measurement]:
    prefix = f"bi{uuid.uuid4().hex[:8]}"
    state = out / prefix
    state.mkdir(parents=True)
    env = {**os.environ, "FAASFLOW_KAFKA_BOOTSTRAP": bootstrap,
           "FAASFLOW_KAFKA_TOPIC_PREFIX": prefix, "FAASFLOW_GATEWAY_PORT": str(PORT),
           "FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN, "FAASFLOW_STATE_DIR": str(state),
           "FAASFLOW_LOG_LEVEL": "WARNING"}
    kafka = Settings(kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix)).kafka
    filled_s = asyncio.run(fill(kafka, count))
    log = state / "gateway.log"
    built = start_gateway(env, REPO, log)
    resumed = start_gateway(env, REPO, log)
    old = (start_gateway(env, baseline_checkout(out), log) if count <= BASELINE_UP_TO
           else None)
    index_mb = sum(p.stat().st_size for p in (state / "index").iterdir()) / 2**20
    queried = query_times_ms(state / "index" / f"{prefix}.sqlite3", count)
    params = {"results": count, "output_bytes": OUTPUT_BYTES, "fill_s": round(filled_s, 1),
              "index_file_mb": round(index_mb, 1), "read_when_built": built.read,
              "read_when_resumed": resumed.read,
              "built": built.__dict__, "resumed": resumed.__dict__,
              "baseline": None if old is None else old.__dict__}
    base = f"gateway of {BASELINE_REV} (in-memory index)"
    return [
        Measurement(f"gateway_rss_{count}", resumed.rss_mb, "MB", base if old else None,
                    old.rss_mb if old else None, params=params),
        Measurement(f"gateway_peak_rss_build_{count}", built.peak_mb, "MB",
                    base if old else None, old.peak_mb if old else None),
        Measurement(f"gateway_start_resumed_{count}", resumed.seconds, "s",
                    base if old else None, old.seconds if old else None),
        Measurement(f"gateway_start_build_{count}", built.seconds, "s",
                    base if old else None, old.seconds if old else None),
        Measurement(f"index_query_p50_{count}", median(queried), "ms",
                    params={"p99_ms": round(percentile(queried, 99), 3),
                            "max_ms": round(max(queried), 3)}),
    ]


async def index(stack: Stack) -> list[Measurement]:
    bootstrap = stack.settings.kafka.bootstrap_servers()
    found: list[Measurement] = []
    for count in SIZES:
        found += await asyncio.to_thread(measure_size, bootstrap, count,
                                         stack.state_dir / "index-bench")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="host:port of a Kafka broker")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated counts of results (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "index")
    args = parser.parse_args()
    for count in (int(size) for size in args.sizes.split(",")):
        for measured in measure_size(args.bootstrap, count, args.out):
            print(json.dumps(measured.to_json()), flush=True)


if __name__ == "__main__":
    main()
