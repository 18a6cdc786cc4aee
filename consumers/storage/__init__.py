"""The ClickHouse edge of the read side."""
