"""``faasflow autoscale``: the worker service of a Docker Swarm stack scaled on Kafka
consumer lag.

    policy   how many workers, from the lag, the count running and the time (pure)
    lag      the worker's consumer groups and their lag, read from Kafka
    scaler   the worker service, scaled through the Docker Engine adapter
    loop     the loop that joins them, behind two small protocols (``LagSource``, ``Scaler``)
"""
