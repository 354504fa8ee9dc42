"""An FDK function that misbehaves on request: {"do": "echo" | "raise" | "status" | "exit" |
"sleep" | "oom"}; anything else answers "ok"."""

import io
import json
import os
import time

from fdk import response


def handler(ctx, data: io.BytesIO = None):
    what = json.loads(data.getvalue() or b"{}").get("do")
    if what == "echo":
        seen = {"call_id": ctx.CallID(), "deadline": ctx.Deadline(), "method": ctx.Method(),
                "url": ctx.RequestURL(), "headers": ctx.HTTPHeaders(), "fn_name": ctx.FnName(),
                "format": ctx.Format(),
                "env": {k: v for k, v in os.environ.items() if k.startswith("FN_")}}
        return response.Response(ctx, response_data=json.dumps(seen), status_code=201,
                                 headers={"Content-Type": "application/json", "X-Trick": "yes"})
    if what == "raise":
        raise RuntimeError("boom")
    if what == "status":
        return response.Response(ctx, response_data="I am a teapot", status_code=418)
    if what == "exit":
        os._exit(3)
    if what == "sleep":
        time.sleep(60)
    if what == "oom":
        return str(len([bytearray(8 << 20) for _ in range(64)]))
    return "ok"
