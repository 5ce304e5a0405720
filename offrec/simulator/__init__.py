"""A sequential e-commerce environment with exact propensities and ground truth."""
