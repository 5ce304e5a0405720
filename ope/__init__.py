"""Off-policy evaluation on numpy arrays."""
