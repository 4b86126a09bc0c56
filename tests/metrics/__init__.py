"""Tests of spbench.metrics."""
