"""A CSI conformance suite: talks to any CSI driver over its endpoint, knows nothing else."""
