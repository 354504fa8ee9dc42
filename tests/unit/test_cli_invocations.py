from __future__ import annotations

from typing import Any

from pipeline.cli.invocations import collect, fresh


def rows(*specs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"invocation_id": ident, "status": status} for ident, status in specs]


class Pages:
    """Invocations served newest first, two at most per page, as the gateway pages them."""

    def __init__(self, count: int) -> None:
        self.all = [{"invocation_id": f"inv-{n}"} for n in range(count, 0, -1)]
        self.asked: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(params)
        start = int(params.get("cursor", 0))
        end = start + min(2, params["limit"])
        return {"invocations": self.all[start:end],
                "next_cursor": str(end) if end < len(self.all) else None}


def test_collect_follows_cursors_up_to_the_limit() -> None:
    pages = Pages(5)
    found = collect(pages, {"function": "f"}, 3)
    assert [r["invocation_id"] for r in found] == ["inv-5", "inv-4", "inv-3"]
    assert [p.get("cursor") for p in pages.asked] == [None, "2"]
    assert [p["limit"] for p in pages.asked] == [3, 1]
    assert all(p["function"] == "f" for p in pages.asked)


def test_collect_stops_at_the_last_page() -> None:
    pages = Pages(3)
    assert len(collect(pages, {}, 50)) == 3
    assert len(pages.asked) == 2


def test_fresh_is_the_final_ones_not_printed_yet_oldest_first() -> None:
    page = rows(("d", "running"), ("c", "failed"), ("b", "succeeded"), ("a", "timeout"))
    assert [r["invocation_id"] for r in fresh(page, {"b"})] == ["a", "c"]
    assert fresh(page, {"a", "b", "c"}) == []
