"""A simulated vLLM server that speaks vLLM's OpenAI-compatible wire format and fails on
command (see README.md in this directory).

    from exporter.simulate import SimulatorConfig, Simulator, FaultSpec
    sim = Simulator(SimulatorConfig(port=0))
    await sim.start(); sim.set_fault(FaultSpec(kind="hang")); await sim.stop()
"""

from __future__ import annotations

from exporter.simulate.cli import main
from exporter.simulate.config import DEFAULT_MODEL, VLLM_VERSION, SimulatorConfig
from exporter.simulate.conn import SimStats
from exporter.simulate.farm import SimulatorFarm
from exporter.simulate.faults import FAULT_KINDS, FaultSpec
from exporter.simulate.runner import run_in_thread
from exporter.simulate.server import Simulator

__all__ = [
    "DEFAULT_MODEL",
    "FAULT_KINDS",
    "VLLM_VERSION",
    "FaultSpec",
    "SimStats",
    "Simulator",
    "SimulatorConfig",
    "SimulatorFarm",
    "main",
    "run_in_thread",
]
