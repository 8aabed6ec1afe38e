"""``from_preset`` / ``save_to_preset`` for the Keras models, the keras-hub way (db_tf.presets does the files)."""


class PresetMixin:
    @classmethod
    def from_preset(cls, preset):
        """The model of a shipped preset name, a preset folder or a run's final.json, weights loaded."""
        from db_tf.presets import PresetError, load_preset

        model, _ = load_preset(preset)
        if not isinstance(model, cls):
            raise PresetError(f"preset {preset!r} holds a {type(model).__name__}, not a {cls.__name__}: load it "
                              f"with {type(model).__name__}.from_preset or TextDetector.from_preset")
        return model

    def save_to_preset(self, directory, overwrite=False, **metadata):
        """Write this model as a preset folder (config.json, model.weights.h5, metadata.json); ``metadata``:
        e.g. source=..., license=..., training_data=...; pre/post-processing get db-tf's defaults (save a
        TextDetector to keep its own settings)."""
        from db_tf.models.dbnet import constructor_kwargs
        from db_tf.presets import save_preset

        meta = {**metadata, "model": constructor_kwargs(self.get_config())}
        return save_preset(directory, self, meta, overwrite=overwrite)
