import importlib.util
import pathlib

import pytest

from keras_ssl import config as config_lib

CONFIGS = sorted(pathlib.Path(__file__).parent.parent.joinpath("configs").glob("*.py"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config_lib.validate(module.get_config())


def test_unknown_fields_are_named_with_a_suggestion():
    config = config_lib.default_config()
    config.batch_sise = 12
    with pytest.raises(ValueError, match=r"config.batch_sise.*Did you mean config.batch_size"):
        config_lib.validate(config)
    config = config_lib.default_config()
    config.optimizer.lr = 0.1
    with pytest.raises(ValueError, match=r"config.optimizer.lr"):
        config_lib.validate(config)


def test_free_form_argument_dicts_are_not_checked_here():
    config = config_lib.default_config()
    config.method_kwargs.anything = 1
    config.augment.kwargs.crop_scale = (0.2, 1.0)
    config_lib.validate(config)
