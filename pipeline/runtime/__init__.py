"""Function runtimes: one port (``Runner``), one adapter per way of running a function."""
