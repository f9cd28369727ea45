"""Fault injection for /v1 requests: latency, error statuses, 429s and dropped connections.

The decision is drawn once per request from a (optionally seeded) PRNG so a seeded run is
reproducible request-by-request. Each injected error or drop also gets a phase: ``before``
(the request never takes effect) or ``after`` (it took effect but the client sees a failure or
a dropped connection -- the ambiguous case a robust client must survive).
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Any

from oxide_sim.sim_config import FAULT_PHASES, FaultConfig


@dataclass(frozen=True)
class FaultDecision:
    latency_s: float = 0.0
    #: "error", "rate_limit", "drop" or None.
    kind: str | None = None
    status: int = 0
    phase: str = "before"


def parse_fault_config(data: Any, base: FaultConfig | None = None) -> FaultConfig:
    """Build a FaultConfig from the JSON of ``PUT /sim/faults``; missing keys keep ``base``."""
    if not isinstance(data, dict):
        raise ValueError("fault config must be a JSON object")
    cur = (base or FaultConfig()).to_json()
    unknown = set(data) - set(cur)
    if unknown:
        raise ValueError(f"unknown fault settings: {sorted(unknown)}")
    cur.update(data)
    for key in ("error_rate", "rate_limit_rate", "latency_rate", "drop_rate"):
        value = cur[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{key} must be a number between 0 and 1")
    statuses = cur["error_statuses"]
    if (
        not isinstance(statuses, list)
        or not statuses
        or not all(isinstance(s, int) and 400 <= s <= 599 for s in statuses)
    ):
        raise ValueError("error_statuses must be a non-empty list of HTTP error statuses")
    latency = cur["latency_ms"]
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        raise ValueError("latency_ms must be a non-negative number")
    if cur["phase"] not in FAULT_PHASES:
        raise ValueError(f"phase must be one of {list(FAULT_PHASES)}")
    if cur["path_regex"] is not None:
        if not isinstance(cur["path_regex"], str):
            raise ValueError("path_regex must be a string or null")
        try:
            re.compile(cur["path_regex"])
        except re.error as exc:
            raise ValueError(f"path_regex is not a regular expression: {exc}") from None
    if cur["seed"] is not None and (
        isinstance(cur["seed"], bool) or not isinstance(cur["seed"], int)
    ):
        raise ValueError("seed must be an integer or null")
    return FaultConfig(
        error_rate=float(cur["error_rate"]),
        error_statuses=[int(s) for s in statuses],
        rate_limit_rate=float(cur["rate_limit_rate"]),
        latency_ms=int(latency),
        latency_rate=float(cur["latency_rate"]),
        drop_rate=float(cur["drop_rate"]),
        phase=cur["phase"],
        path_regex=cur["path_regex"],
        seed=cur["seed"],
    )


class FaultInjector:
    def __init__(self, cfg: FaultConfig) -> None:
        self._lock = threading.Lock()
        self.injected = 0
        self.latency_injected = 0
        self.configure(cfg)

    def configure(self, cfg: FaultConfig) -> None:
        with self._lock:
            self.cfg = cfg
            self._regex = re.compile(cfg.path_regex) if cfg.path_regex else None
            # Not for security: a reproducible stream of fault decisions.
            self._rng = random.Random(cfg.seed)  # noqa: S311

    def decide(self, path: str) -> FaultDecision:
        with self._lock:
            cfg = self.cfg
            if self._regex is not None and not self._regex.search(path):
                return FaultDecision()
            rng = self._rng
            latency = 0.0
            if cfg.latency_ms > 0 and cfg.latency_rate > 0 and rng.random() < cfg.latency_rate:
                latency = cfg.latency_ms / 1000.0
                self.latency_injected += 1
            kind: str | None = None
            status = 0
            if cfg.drop_rate > 0 and rng.random() < cfg.drop_rate:
                kind = "drop"
            elif cfg.error_rate > 0 and rng.random() < cfg.error_rate:
                kind = "error"
                status = rng.choice(cfg.error_statuses)
            elif cfg.rate_limit_rate > 0 and rng.random() < cfg.rate_limit_rate:
                kind = "rate_limit"
                status = 429
            phase = cfg.phase
            if kind is not None:
                self.injected += 1
                if kind == "rate_limit":
                    phase = "before"  # a rate limiter refuses before doing anything
                elif phase == "random":
                    phase = rng.choice(("before", "after"))
            return FaultDecision(latency_s=latency, kind=kind, status=status, phase=phase)
