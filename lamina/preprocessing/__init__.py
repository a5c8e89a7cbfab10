"""`keras.preprocessing`: image loading helpers (`keras.preprocessing.image`)."""
from lamina.preprocessing import image

__all__ = ["image"]
