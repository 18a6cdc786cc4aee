"""The read side: consumer groups that project the event topics into ClickHouse tables.

``projections`` is pure logic (events to rows); ``storage`` is the ClickHouse edge;
``projector`` chains decode, project, write and commit over a Kafka consumer group.
"""
