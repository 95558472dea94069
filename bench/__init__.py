"""`make bench`: throughput and latency of intake → routing next to a raw aiokafka relay on one broker.

Not part of the test suite: numbers depend on the machine, so they are measured and written down
(`bench/results/latest.json`), never asserted.
"""
