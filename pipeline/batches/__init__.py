"""Batched subscriptions, as AWS Lambda's Kafka and SQS event-source mappings have them.

    events of one partition ─► ``Assembler`` (per subscription and partition: full, too
                               large for one more, or the window elapsed) ─► one Invocation
                               whose function input is the JSON list of the events
    its run ─► one Result whose ``items`` hold each event's outcome (``outcomes``); the
               index makes a row of each, under the id the event would have had unbatched

``policy`` holds a subscription's batching settings; ``assembler`` the pure gathering;
``batcher`` its asynchronous side (window timers, acknowledgement once queued).
"""
