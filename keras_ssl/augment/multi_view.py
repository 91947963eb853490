"""Turns one batch of images into several independently augmented views."""

import keras

from keras_ssl.augment.base import prepare_images
from keras_ssl.augment.random_apply import call_layer
from keras_ssl.augment.seeds import fold_in, resolve_seed
from keras_ssl.validation import check_int


def _is_pipeline(value):
    return isinstance(value, (list, tuple))


def _check_layers(pipeline, where):
    for layer in pipeline:
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"MultiViewAugmenter pipelines must hold keras.layers.Layer objects; {where} "
                f"holds a {type(layer).__name__}. Fix: pass views=[[layer, ...], ...] or "
                "(pipeline=[layer, ...], num_views=2)."
            )


@keras.saving.register_keras_serializable(package="keras_ssl")
class MultiViewAugmenter(keras.layers.Layer):
    """Augments a batch into ``num_views`` views, each with its own pipeline and sub-seed.

    ``MultiViewAugmenter([[crop_a, flip_a], [crop_b, flip_b, blur_b]])`` gives two views with
    their own pipelines (views may have different output sizes, e.g. multi-crop);
    ``MultiViewAugmenter([crop, flip], num_views=2)`` applies one pipeline twice with
    independent randomness. Input may be ``uint8`` in ``[0, 255]`` or float in ``[0, 1]``; views
    are ``float32`` in ``[0, 1]``. keras_ssl layers get sub-seeds derived from ``seed`` (view
    ``v``, layer ``j``: ``fold_in(fold_in(seed, v), j)``); other layers (Keras core, keras-cv)
    are called without a seed and use their own random state.

    Args:
        views: a list of pipelines (one per view), each a list of layers applied in order; or a
            single pipeline (a list of layers) to be used for ``num_views`` views.
        num_views: number of views when ``views`` is a single pipeline (default 2); must be
            ``None`` or ``len(views)`` when ``views`` is a list of pipelines.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, views, num_views=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not _is_pipeline(views):
            raise ValueError(
                f"MultiViewAugmenter `views` must be a list of pipelines (lists of layers) or "
                f"one pipeline; received {type(views).__name__}. Fix: pass views=[[layer, ...], "
                "[layer, ...]] or ([layer, ...], num_views=2)."
            )
        nested = len(views) > 0 and all(_is_pipeline(v) for v in views)
        if nested:
            if num_views is not None and num_views != len(views):
                raise ValueError(
                    f"MultiViewAugmenter got {len(views)} pipelines but num_views={num_views}. "
                    "Fix: leave num_views=None when passing one pipeline per view."
                )
            pipelines = [list(v) for v in views]
        else:
            if num_views is None:
                num_views = 2
            check_int(num_views, "num_views", fix="pass e.g. num_views=2.")
            pipelines = [list(views) for _ in range(num_views)]
        for index, pipeline in enumerate(pipelines):
            _check_layers(pipeline, f"view {index}")
        self.views = views
        self.num_views = len(pipelines)
        self._pipelines = pipelines

    @property
    def pipelines(self):
        """The list of pipelines, one per view (a shared pipeline appears several times)."""
        return self._pipelines

    def build(self, input_shape):
        # No weights of its own; build the pipeline layers so the owning model is fully built.
        # Other ranks are left to call(), which raises a clear error for them.
        pipelines = self._pipelines if len(input_shape) == 4 else []
        for pipeline in pipelines:
            shape = tuple(input_shape)
            for layer in pipeline:
                if not layer.built:
                    layer.build(shape)
                try:
                    shape = tuple(layer.compute_output_shape(shape))
                except NotImplementedError:  # foreign layers (keras-cv) keep the shape
                    pass
        self.built = True

    def call(self, images, seed=None):
        """Augments ``images`` into ``num_views`` views.

        Args:
            images: ``uint8`` in ``[0, 255]`` or float in ``[0, 1]``,
                ``[batch, height, width, channels]``.
            seed: optional integer tensor of shape ``[2]``; the same seed gives identical views.

        Returns:
            A tuple of ``num_views`` ``float32`` tensors in ``[0, 1]``.
        """
        images = prepare_images(images, name="MultiViewAugmenter images")
        seed = resolve_seed(seed)
        views = []
        for view_index, pipeline in enumerate(self._pipelines):
            view_seed = fold_in(seed, view_index)
            view = images
            for layer_index, layer in enumerate(pipeline):
                view = call_layer(layer, view, fold_in(view_seed, layer_index))
            views.append(view)
        return tuple(views)

    def compute_output_shape(self, input_shape):
        shapes = []
        for pipeline in self._pipelines:
            shape = tuple(input_shape)
            for layer in pipeline:
                shape = tuple(layer.compute_output_shape(shape))
            shapes.append(shape)
        return tuple(shapes)

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        nested = len(self.views) > 0 and all(_is_pipeline(v) for v in self.views)
        if nested:
            views = [[serialize(layer) for layer in pipeline] for pipeline in self.views]
            num_views = None
        else:
            views = [serialize(layer) for layer in self.views]
            num_views = self.num_views
        config.update(views=views, num_views=num_views)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        views = config.pop("views")
        if config.get("num_views") is None:
            views = [[deserialize(layer) for layer in pipeline] for pipeline in views]
        else:
            views = [deserialize(layer) for layer in views]
        return cls(views, **config)
