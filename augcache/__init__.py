"""augcache: seeded augmentation cache for transfer learning with a frozen conv base."""

__version__ = "0.1.0"
