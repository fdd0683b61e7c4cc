"""Scores: accuracy and per-class metrics (numpy), heads and the k-NN classifier scored on stores and test-time views."""
