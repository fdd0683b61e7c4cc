"""How a backbone's output becomes the features that are stored: conv_base.pooling.

A feature map (B, h, w, C), of a CNN or of a keras-hub CNN backbone, is kept or pooled to a
vector (MAP_POOLING); a transformer's tokens (B, tokens, D) give the class token, the mean of the
patch tokens, or the patch grid as an (h, w, D) map (TOKEN_POOLING). None keeps the map or the
grid. The config accepts CHOICES (``none`` is None spelled in YAML); the schema lists the same.
"""

from __future__ import annotations

MAP_POOLING = ("avg", "max", None)
TOKEN_POOLING = ("cls", "mean", None)
CHOICES = (None, "avg", "max", "cls", "mean", "none")


def normalised(value) -> str | None:
    """conv_base.pooling as the code reads it: None for null or ``none``."""
    return None if value in (None, "none") else str(value)


def pool_map(model, pooling):
    """model with its feature map pooled to a vector by pooling ("avg" or "max"); the model itself
    for pooling None or an output that is not a map."""
    import keras

    if pooling is None or len(model.output.shape) != 4:
        return model
    pool = keras.layers.GlobalAveragePooling2D() if pooling == "avg" else keras.layers.GlobalMaxPooling2D()
    return keras.Model(model.inputs, pool(model.output), name=f"{model.name}_{pooling}")


def pool_tokens(output, pooling, prefix: int, grid: tuple[int, int]):
    """A transformer's tokens (B, tokens, D), of which the first `prefix` are not patches (class and
    register tokens), as the class token (the first), the patches' mean, or the patch grid (h, w, D)
    for pooling None."""
    import keras

    tokens, dim = int(output.shape[1]), int(output.shape[2])
    if pooling == "cls":
        return keras.layers.Flatten(name="class_token")(keras.layers.Cropping1D((0, tokens - 1))(output))
    patches = keras.layers.Cropping1D((prefix, 0))(output)
    if pooling == "mean":
        return keras.layers.GlobalAveragePooling1D(name="patch_mean")(patches)
    return keras.layers.Reshape((*grid, dim), name="patch_grid")(patches)
