"""Replaying events from the log: ranges, records, the runner the workers run, and the
gateway's side (``service``)."""
