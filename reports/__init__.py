"""Self-contained HTML reports rendered from stored results (no computation here)."""
