"""The analytics domain: which metrics the store reports and what each one means.

It knows nothing of Kafka, ClickHouse or HTTP: ``queries.metrics`` computes these metrics in
the engine, and holds itself to the definitions and pure rules here.
"""
