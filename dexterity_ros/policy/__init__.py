"""Student policy: the ONNX contract, its runtime core and (torch-side) exporter.

Importing this package does not import torch; ``policy.export`` and
``policy.networks`` do, and only export/training code uses them.
"""
from .contract import (CONTRACT_VERSION, METADATA_KEY, ContractError, PolicyContract, PolicyError,
                       read_contract)
from .runtime import GoalError, PolicyRuntime, RuntimeOptions, StepOutput, StepStatus, normalize_goal

__all__ = ["CONTRACT_VERSION", "METADATA_KEY", "ContractError", "GoalError", "PolicyContract", "PolicyError",
           "PolicyRuntime", "RuntimeOptions", "StepOutput", "StepStatus", "normalize_goal", "read_contract"]
