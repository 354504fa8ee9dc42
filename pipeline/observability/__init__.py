"""What faasflow tells about itself: Prometheus metrics read from shared state, the
dashboard's pulse, and structured logs.

    logs       logging configured at the entry point; ``log_context`` for the ids
    figures    the cluster-wide figures (Kafka offsets and lag, the index's totals, warm
               containers, parked dead letters), read in one place for both of:
    collector  ``/metrics``' cluster-wide part (``ClusterCollector``)
    pulse      samples for the dashboard's live charts (``Pulse``)
    service    ``observe``: the gateway's lifespan starts them with it
"""
