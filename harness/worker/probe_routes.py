"""The numerics probe's discrete decisions: the float64 reference routes max-pooling as the path did.

Max pooling is arithmetic-free but discontinuous: which input of a window is the maximum is a
decision, and two inputs that differ by a rounding error (common after BatchNormalization + ReLU)
can be decided differently in float32 and float64. The gradient then flows to a different input,
and the relative error of every gradient below that layer jumps to ~1e-3 (measured on
``cnn_batchnorm``, float32, mnist-5k: ~25,000 float32 epsilons at ``pool_2``) although no layer
computed anything wrongly. The probe is about arithmetic, so the reference replays the path's
decisions: each ``MaxPooling2D`` of the reference takes the float64 value at the position the
path's own pooling chose (``tf.nn.max_pool_with_argmax`` on the path's input, upcast exactly to
float32), and its gradient flows there. Models without max pooling (the seed's MLPs) are unchanged.
"""

from __future__ import annotations

from typing import Any


def is_routed(layer: Any) -> bool:
    """Layers whose reference replays the path's choice: 2-D max pooling, channels last."""
    import keras

    return isinstance(layer, keras.layers.MaxPooling2D) and layer.data_format == "channels_last"


def pool_routes(layers: list[Any], x: Any, activations: list[Any]) -> dict[int, Any]:
    """For each routed layer (by index), the flat argmax of its window maxima in the path's input."""
    import tensorflow as tf

    routes = {}
    for i, layer in enumerate(layers):
        if not is_routed(layer):
            continue
        inputs = tf.cast(x if i == 0 else activations[i - 1], tf.float32)  # exact for bf16/fp16/fp32
        _, argmax = tf.nn.max_pool_with_argmax(
            inputs,
            ksize=list(layer.pool_size),
            strides=list(layer.strides),
            padding=layer.padding.upper(),
            include_batch_in_index=True,
        )
        routes[i] = argmax
    return routes


def routed(h: Any, argmax: Any) -> Any:
    """The pooled output taken from ``h`` at the path's argmax positions (differentiable: a gather)."""
    import tensorflow as tf

    flat = tf.gather(tf.reshape(h, [-1]), tf.reshape(argmax, [-1]))
    return tf.reshape(flat, tf.shape(argmax))
