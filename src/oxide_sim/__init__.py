"""A simulated Oxide API (Nexus) for testing and developing the CSI plugin without a rack.

Serves, over real HTTP, the /v1 endpoints a CSI plugin uses with Nexus's status codes, error
bodies, selector rules, pagination and state machines, plus /sim hooks for tests (stats,
fault injection, faulted disks, failing starts). It imports nothing of ``oxide_csi``.
"""

from oxide_sim.core import InstanceHook
from oxide_sim.server import SimulatorServer
from oxide_sim.sim_config import FaultConfig, SimConfig

__all__ = ["FaultConfig", "InstanceHook", "SimConfig", "SimulatorServer"]
