"""Callbacks and sinks: final Results POSTed, signed, to the URLs users gave.

    guard       the SSRF rule: http(s) URLs resolving only to public addresses
    signing     Standard Webhooks signatures under the one platform secret
    sender      the HTTP adapter: one POST to the address the guard checked, no redirects
    records     a delivery's record in ``topics.callbacks`` and which ones are settled
    breaker     a circuit breaker per target (URL origin), shared through a compacted topic
    dispatcher  the core: a Result's targets, lanes per origin, retries, every attempt kept
    service     the above wired to Kafka, for the worker and the gateway

The worker's ``callbacks`` agent follows the results topic and hands each Result to the
dispatcher; the gateway queues async invocations (``ControlPlane.invoke_async``), keeps
sinks in the registry, and lists and resumes the targets.
"""
