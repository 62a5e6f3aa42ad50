"""Built-in models. Importing this package registers them (visionzoo.registry does it lazily)."""

from .googlenet import GoogLeNet
from .vgg import VGG

__all__ = ["GoogLeNet", "VGG"]
