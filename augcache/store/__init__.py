"""HDF5 stores: writing them atomically (writer), the feature store format (features), merging
shards and epochs (merge), the disk a run's stores take (plan) and reserving it (space)."""
