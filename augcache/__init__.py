"""augcache: seeded augmentation cache for transfer learning with a frozen conv base."""

__version__ = "0.1.0"

import os as _os

# The package computes with TensorFlow; a user whose Keras defaults to JAX or torch still gets it.
_os.environ["KERAS_BACKEND"] = "tensorflow"
