"""The frozen base: building it (Keras applications, keras-hub presets, files), pooling its output, and running images through it into feature stores."""
