"""Building blocks every layer uses: the Keras backend, atomic files, hashes and versions, memory limits, logging, and the workflow's output paths."""
