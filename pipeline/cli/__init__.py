"""The ``faasflow`` command line."""
