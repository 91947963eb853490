"""Two local worker processes under MultiWorkerMirroredStrategy equal one process.

The workers talk over loopback ports only. Each trains the same tiny SimCLR for two steps on
the same global batches (TF_CONFIG names both). The two workers must hold bit-identical
weights, and equal a single-process run on the global batches up to float rounding: the
collectives sum in another order than one device does (first-step losses already differ in
the 6th digit), and two momentum-SGD steps carry that to about 2e-5.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_ssl import backbones, distribute
    from keras_ssl.methods import SimCLR

    mode, out = sys.argv[1], sys.argv[2]
    single = mode == "single"
    strategy = tf.distribute.get_strategy() if single else distribute.resolve(strategy=mode)
    rng = np.random.default_rng(0)
    views = tuple(rng.random((16, 8, 8, 1), dtype=np.float32) for _ in range(2))
    dataset = tf.data.Dataset.from_tensor_slices({"views": views}).batch(8, drop_remainder=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        encoder = backbones.SmallResNet((8, 8, 1), widths=(4,), synchronized_bn=True)
        model = SimCLR(encoder, projection_dim=8, synchronized_bn=True)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    history = model.fit(dataset, epochs=2, steps_per_epoch=1, verbose=0).history
    np.savez(out, loss=np.array(history["loss"]), *model.get_weights())
    """
)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _launch(mode, out, tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode, out],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_workers_equal_one_process(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = [
        _launch(
            "multi_worker",
            str(tmp_path / f"worker{index}.npz"),
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}},
        )
        for index in range(2)
    ]
    single = _launch("single", str(tmp_path / "single.npz"))
    for process in [*processes, single]:
        try:
            assert process.wait(timeout=240) == 0, process.stderr.read()[-3000:]
        finally:
            process.kill()
    reference = np.load(tmp_path / "single.npz")
    first, second = (np.load(tmp_path / f"worker{index}.npz") for index in range(2))
    assert first.files == second.files == reference.files
    for key in reference.files:
        np.testing.assert_array_equal(first[key], second[key])
        np.testing.assert_allclose(first[key], reference[key], rtol=1e-4, atol=1e-4)
