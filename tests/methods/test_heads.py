from keras_ssl import backbones
from keras_ssl.methods.byol import BYOL
from keras_ssl.methods.heads import predictor_heads


def make_method(**kwargs):
    encoder = backbones.SmallResNet((8, 8, 1), widths=(4,), synchronized_bn=True)
    options = {"projection_hidden_dim": 8, "projection_dim": 4, "prediction_hidden_dim": 6}
    return BYOL(encoder, **{**options, **kwargs})


def test_predictor_heads_structure_and_batch_norm_synchronisation():
    method = make_method(synchronized_bn=True)
    projector, predictor = predictor_heads(
        method,
        (8, 8),
        4,
        6,
        projection_output_batch_norm=True,
        prediction_output_batch_norm=False,
    )
    assert (projector.name, predictor.name) == ("projector", "predictor")
    assert projector.hidden_dims == (8, 8) and projector.output_dim == 4
    assert projector.output_batch_norm and projector.synchronized
    assert predictor.hidden_dims == (6,) and predictor.output_dim == 4
    assert not predictor.output_batch_norm and predictor.synchronized
    _, none = predictor_heads(method, (8,), 4, 6, use_predictor=False)
    assert none is None
    unsynchronised, _ = predictor_heads(make_method(synchronized_bn=False), (8,), 4, 6)
    assert not unsynchronised.synchronized


def test_build_predictor_heads_builds_the_heads_and_copies_encoder_and_projector():
    method = make_method()
    assert method.projector.built and method.predictor.built
    assert method.predictor.output_layer.kernel.shape == (6, 4)
    pairs = [(method.encoder, method.target_encoder), (method.projector, method.target_projector)]
    for online, copy in pairs:
        assert copy is not online and not copy.trainable_weights
        assert [w.shape for w in copy.weights] == [w.shape for w in online.weights]
    assert make_method(use_predictor=False).predictor is None
