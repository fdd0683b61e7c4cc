"""The user's images: listing a source, the index of the good files, decoded pixels, the demo data."""
