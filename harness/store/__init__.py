"""Files on disk, TensorFlow-free: the one atomic writer, the result schema, suite layout, the
worker<->backend protocol and the provenance every result carries."""
