"""syncd: keeps folders of images mirrored into an image-search gallery."""

__version__ = "0.1.0"
