"""`keras.dtype_policies`: dtype policies by name, and their serialised form.

>>> lamina.dtype_policies.get("mixed_float16").compute_dtype
'float16'
"""
from lamina import backend
from lamina.mixed_precision import DTypePolicy, global_policy

FloatDTypePolicy = DTypePolicy


def get(identifier):
    """A `DTypePolicy` from a name, a serialised policy or a policy; None: the global one."""
    if identifier is None:
        return global_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    try:
        return DTypePolicy(identifier if isinstance(identifier, str)
                           else backend.standardize_dtype(identifier))
    except ValueError:
        raise ValueError("Cannot interpret `dtype` argument. Expected a string or an instance "
                         f"of DTypePolicy. Received: dtype={identifier!r}") from None


def serialize(dtype_policy):
    """`dtype_policy` as Keras writes it in configs: `{"class_name": "DTypePolicy", ...}`."""
    from lamina.saving.config import dtype_policy_config
    return dict(dtype_policy_config(dtype_policy.name))


def deserialize(config, custom_objects=None):
    """The `DTypePolicy` a serialised one (Keras 3's or Keras 2's `Policy`) describes."""
    from lamina.saving.config import dtype_from_config
    if config.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
        raise ValueError(f"Unknown dtype policy class: {config.get('class_name')!r}. "
                         "Expected 'DTypePolicy'.")
    return DTypePolicy(dtype_from_config(config))
