from tests.kube.harness import kube, sim

__all__ = ["kube", "sim"]
