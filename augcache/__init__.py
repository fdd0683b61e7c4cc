"""augcache: seeded augmentation cache for transfer learning with a frozen conv base."""

import os as _os

from augcache.core import backend as _backend
from augcache.core.version import __version__

# The package computes with TensorFlow; Keras uses it unless the user chose another backend (the
# workflow's jobs and `augcache predict` always run on TensorFlow).
_os.environ.setdefault("KERAS_BACKEND", _backend.TENSORFLOW)


def open_run(results="results"):
    """A finished workflow run, read from its results folder (see :mod:`augcache.api`)."""
    from augcache.api import open_run as _open_run

    return _open_run(results)
