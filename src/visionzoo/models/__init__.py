"""Built-in models. Importing this package registers them (visionzoo.factory and config's model check import it)."""

from .googlenet import GoogLeNet
from .vgg import VGG

__all__ = ["GoogLeNet", "VGG"]
