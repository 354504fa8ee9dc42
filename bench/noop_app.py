"""The ingest baseline: a FastAPI endpoint that reads the body and answers, served the way
the gateway is served (uvicorn on uvloop with httptools, as many processes sharing the port
with ``SO_REUSEPORT``), so the ratio isolates what faasflow adds (its middleware, routing,
the registry lookup, the CloudEvent, the Kafka round trip).

``python -m bench.noop_app PORT PROCESSES`` runs it until SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import uvicorn
from fastapi import FastAPI, Request

from pipeline.gateway.processes import die_with_parent
from pipeline.gateway.server import reuse_port_socket

app = FastAPI()


@app.post("/noop", status_code=202)
async def noop(request: Request) -> dict[str, str]:
    await request.body()
    return {"event_id": "0"}


def serve(port: int) -> None:
    config = uvicorn.Config(app, port=port, loop="uvloop", http="httptools",
                            access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[reuse_port_socket(config.host, port)])


def main() -> None:
    port, processes = int(sys.argv[1]), int(sys.argv[2])
    if processes == 1:
        serve(port)
        return
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # pause() returns on it
    children = [subprocess.Popen([sys.executable, "-m", "bench.noop_app", str(port), "1"],
                                 preexec_fn=die_with_parent) for _ in range(processes)]
    try:
        signal.pause()
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait()


if __name__ == "__main__":
    main()
