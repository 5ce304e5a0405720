"""Raw event logs into the DuckDB warehouse ``events`` table."""
