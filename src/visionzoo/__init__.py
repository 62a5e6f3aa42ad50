"""visionzoo: GoogLeNet and VGG model zoo for MindSpore with faithful recipes and one trainer."""
# runtime must come first: it sets oneDNN's environment before MindSpore's first operation.
from . import runtime as _runtime  # noqa: F401  isort: skip

from .errors import CheckpointError, ConfigError, DataError, DeviceError, ModelError, VisionZooError
from .registry import create_model, get_model_info, is_model, list_models, register_model
from .inference import Prediction, Predictor, predict

__version__ = "0.1.0"

__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "is_model",
    "get_model_info",
    "Predictor",
    "Prediction",
    "predict",
    "VisionZooError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "DeviceError",
    "ModelError",
]
