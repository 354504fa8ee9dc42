"""What the API shows of a connector: its worker's state, and its last checkpoint."""

from __future__ import annotations

import pytest

from pipeline.connector_states import ConnectorState, ConnectorStates, State
from pipeline.gateway.ui.sources import SUMMARY_CHARS, checkpoint_summary
from pipeline.records import dumps
from pipeline.specs import ConnectorSpec

SPEC = ConnectorSpec(name="poll", kind="http-poll", source="docs", config={},
                     created_at="2026-12-02T10:00:00+00:00")


def committed(states: ConnectorStates, **record: object) -> None:
    states.checkpoints.apply(b"poll", dumps(record))


def test_a_connector_without_a_checkpoint_shows_none() -> None:
    assert ConnectorStates().describe(SPEC)["checkpoint"] is None


def test_the_last_checkpoint_is_shown_with_its_time_and_without_its_offsets() -> None:
    states = ConnectorStates()
    committed(states, state={"digest": "a"}, offsets={"0": 3}, at="2026-12-02T10:00:01+00:00")
    committed(states, state={"digest": "b"}, offsets={"0": 4}, at="2026-12-02T10:00:02+00:00")
    assert states.describe(SPEC)["checkpoint"] == {"state": {"digest": "b"},
                                                   "at": "2026-12-02T10:00:02+00:00"}


def test_a_checkpoint_is_shown_beside_a_reported_state_and_one_written_without_a_time() -> None:
    states = ConnectorStates()
    states.apply(b"poll", ConnectorState(name="poll", definition=SPEC.created_at,
                                         state=State.RUNNING, at="2026-12-02T10:00:03+00:00",
                                         worker="host:1").encode())
    committed(states, state={"block": 7}, offsets={})  # before checkpoints carried a time
    shown = states.describe(SPEC)
    assert (shown["state"], shown["checkpoint"]) == ("running", {"state": {"block": 7},
                                                                 "at": None})


@pytest.mark.parametrize("record", [b"[1]", b'{"offsets": {}}', b'{"state": 7}'])
def test_a_record_that_is_no_checkpoint_is_refused_and_the_last_good_one_stays(
        record: bytes) -> None:
    states = ConnectorStates()
    committed(states, state={"block": 7}, offsets={})
    with pytest.raises(ValueError, match="a checkpoint is"):
        states.checkpoints.apply(b"poll", record)
    assert states.describe(SPEC)["checkpoint"] == {"state": {"block": 7}, "at": None}


def test_a_tombstone_forgets_the_checkpoint() -> None:
    states = ConnectorStates()
    committed(states, state={"block": 7}, offsets={})
    states.checkpoints.apply(b"poll", None)
    assert states.describe(SPEC)["checkpoint"] is None


def test_the_summary_gives_plain_values_and_the_size_of_the_rest() -> None:
    state = {"chain_id": 1337, "next": 42, "blocks": [{"n": 40}, {"n": 41}], "final": None}
    assert checkpoint_summary(state) == "chain_id=1337, next=42, blocks: 2 items, final=None"
    assert checkpoint_summary({}) == ""


def test_a_long_summary_is_cut() -> None:
    line = checkpoint_summary({"etag": "x" * 200})
    assert len(line) == SUMMARY_CHARS
    assert line.endswith("…")
