"""The results index: what queries need of every invocation, in an on-disk SQLite file
materialized from the compacted results topic (outputs and logs stay in the log).

    rows      what a row holds, queries, cursors, the replay summary
    store     the file: schema, rebuilding, applying batches with their offsets
    queries   the statements that answer queries
    service   ``ResultsIndex``: the views that feed it, whole Results read from Kafka
"""

from pipeline.index.rows import Cursor, Page, Query, ReplaySummary, Row
from pipeline.index.service import ResultsIndex

__all__ = ["Cursor", "Page", "Query", "ReplaySummary", "ResultsIndex", "Row"]
