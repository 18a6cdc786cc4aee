"""Pure projection logic: events in, rows out. No Kafka, no ClickHouse."""
