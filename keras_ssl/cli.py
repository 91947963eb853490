"""``keras-ssl``: train, evaluate and export self-supervised models from config files.

    keras-ssl train  --config configs/simclr_fashion_mnist.py --workdir runs/simclr \\
                     [--config.batch_size=512 --config.train_steps=20000 ...] \\
                     [--strategy=auto|cpu|mirrored|multi_worker|tpu --tpu=NAME]
    keras-ssl eval   --workdir runs/simclr [--baselines]
                     [--protocol=linear|knn|finetune|fractions|embedding|segmentation|all
                      --eval_option=finetune_epochs=3 ...]
    keras-ssl export --workdir runs/simclr [--overwrite]
    keras-ssl search --workdir runs/simclr --query images/ [--top_k=10 --index=PATH
                     --index_backend=exact|faiss]
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train", "eval", "export", "search")
_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for the run's outputs.")
_TPU = flags.DEFINE_string("tpu", None, "Cloud TPU name or address ('local' on a TPU VM).")
_STRATEGY = flags.DEFINE_enum(
    "strategy",
    "auto",
    ["auto", "cpu", "mirrored", "multi_worker", "tpu"],
    "train: auto (TPU > GPUs > CPU), cpu, mirrored (all local GPUs), multi_worker (TF_CONFIG), "
    "tpu (--tpu=NAME, default local).",
)
_BASELINES = flags.DEFINE_bool(
    "baselines", False, "eval: also probe raw pixels and the random-init encoder."
)
_PROTOCOL = flags.DEFINE_string(
    "protocol",
    None,
    "eval: a protocol of keras_ssl.evaluation.protocols.PROTOCOLS (linear, knn, finetune, "
    "fractions, embedding, segmentation, retrieval) or 'all'; writes DIR/eval.json and plots. "
    "Default: kNN + linear probes -> metrics.json.",
)
_EVAL_OPTIONS = flags.DEFINE_multi_string(
    "eval_option", [], "eval: NAME=VALUE overriding protocols.DEFAULT_OPTIONS (Python literal)."
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "export: replace an existing export.")
_QUERY = flags.DEFINE_string(
    "query", None, "search: a folder of query images, one image file or a .npy array."
)
_TOP_K = flags.DEFINE_integer("top_k", 10, "search: neighbours per query.")
_INDEX = flags.DEFINE_string(
    "index", None, "search: index folder to load, or to build and save (default DIR/index)."
)
_INDEX_BACKEND = flags.DEFINE_enum(
    "index_backend", "exact", ["exact", "faiss"], "search: backend of a newly built index."
)


def main(argv):
    command = argv[1] if len(argv) > 1 else None
    if command not in COMMANDS or len(argv) > 2:
        raise app.UsageError(
            f"expected one command out of {COMMANDS}; received {argv[1:]}. "
            "Example: keras-ssl train --config configs/simclr_fashion_mnist.py --workdir runs/x"
        )
    if not _WORKDIR.value:
        raise app.UsageError("--workdir is required.")
    import tensorflow as tf  # imported late: TensorFlow is slow to load

    from keras_ssl import _tf_console, distribute, experiment

    tf.get_logger().setLevel("ERROR")  # keep TensorFlow's own INFO lines out of the output
    _tf_console.only_own_info_lines(logging.get_absl_handler())  # and those it logs via absl

    workdir = os.path.abspath(_WORKDIR.value)
    if command == "train":
        if _CONFIG.value is None:
            raise app.UsageError("train needs --config (e.g. configs/simclr_fashion_mnist.py).")
        strategy = distribute.resolve(_TPU.value, strategy=_STRATEGY.value)
        experiment.train(_CONFIG.value, workdir, strategy=strategy)
        logging.info("Run written to %s", workdir)
    elif command == "eval":
        experiment.evaluate(
            workdir,
            baselines=_BASELINES.value,
            protocol=_PROTOCOL.value,
            options=_parse_options(_EVAL_OPTIONS.value),
        )
    elif command == "search":
        if not _QUERY.value:
            raise app.UsageError("search needs --query (a folder of images or a .npy array).")
        from keras_ssl.retrieval.search import search_workdir

        search_workdir(
            workdir,
            _QUERY.value,
            _TOP_K.value,
            index_path=_INDEX.value,
            backend=_INDEX_BACKEND.value,
        )
    else:
        print(experiment.export_run(workdir, overwrite=_OVERWRITE.value))


def _parse_options(items):
    """``["name=value", ...]`` -> dict, each value a Python literal (or a plain string)."""
    import ast

    options = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise ValueError(
                f"--eval_option must be NAME=VALUE; received {item!r}. Fix: e.g. "
                "--eval_option=finetune_epochs=3."
            )
        try:
            options[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[name] = value
    return options


def _parse_flags(argv):
    """absl's parser, with unknown ``--config.FIELD`` overrides reported as ValueErrors."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError) as error:
        overrides = [arg.split("=")[0][2:] for arg in argv if arg.startswith("--config.")]
        unknown = [name for name in overrides if not _known_field(name)]
        raise ValueError(
            f"Unknown config field in a command-line override: received {unknown or overrides} "
            f"({error}). Expected fields of the config file (see keras_ssl/config.py); "
            "arguments inside method_kwargs / backbone_kwargs / augment.kwargs must be set in "
            "the config file before they can be overridden. Fix: correct the field name."
        ) from error


def _known_field(dotted):
    from keras_ssl import config as config_lib

    node = config_lib.default_config()
    for part in dotted.split(".")[1:]:
        if part not in node:
            return False
        node = node[part]
    return True


def run():
    """Console-script entry point (TensorFlow's start-up notices are hidden on import)."""
    try:
        app.run(main, flags_parser=_parse_flags)
    except flags.Error as error:
        print(f"keras-ssl: error: {error}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as error:
        if type(error).__name__ != "NonFiniteLossError":
            raise
        print(f"keras-ssl: training stopped: {error}", file=sys.stderr)
        sys.exit(1)
    except ValueError as error:  # bad input: a one-line message, not a traceback
        print(f"keras-ssl: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run()
