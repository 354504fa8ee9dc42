from __future__ import annotations

from typing import Any

from pipeline.gateway.answers import IndexStats
from pipeline.gateway.deps import Control, management

router = management("/v1/index", "invocations")


@router.get("", summary="The results index: its file, size, and what it read since start",
            response_model=IndexStats)
async def index_stats(control: Control) -> dict[str, Any]:
    return control.results.stats()
