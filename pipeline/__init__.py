"""faasflow: serverless functions on your own Docker machines, driven by Kafka event streams."""

__version__ = "0.1.0"
