"""Helpers for layer configs (``get_config`` / deserialisation) shared by layers with sub-layers."""


def with_dtype(config, dtype):
    """A serialised layer config with its dtype policy replaced by ``dtype`` (unchanged if None).

    A layer holding a sub-layer (ODE dynamics, a custom CIFS probe) deserialises it with its own policy,
    so a float32 export copy of a mixed-precision model gets float32 sub-layers too."""
    if dtype is None or not isinstance(config.get("config"), dict):
        return config
    return {**config, "config": {**config["config"], "dtype": dtype}}
