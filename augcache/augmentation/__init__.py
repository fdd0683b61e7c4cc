"""Augmentation numbers and the one function that applies them: the manifests, the augmentation config and its Keras spellings, feature-space augmentation."""
