"""Plain DuckDB SQL steps that build RL datasets from warehouse events, and their loader."""
