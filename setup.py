"""keras_ssl: self-supervised learning for images with Keras 3 and TensorFlow."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

setup(
    name="keras_ssl",
    version="0.1.0",
    description="Self-supervised learning methods for images, built on Keras 3 and TensorFlow.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_ssl", "keras_ssl.*"]),
    package_data={
        "keras_ssl.datasets": ["data/fashion_mnist_subset/*"],
        "keras_ssl.pretrained": ["weights/*.weights.h5"],
    },
    install_requires=[
        "tensorflow==2.21.*",
        "keras==3.15.*",
        "tensorflow-datasets>=4.9",
        "importlib_resources>=6",  # tensorflow-datasets needs it on Python 3.11
        "absl-py>=2.0",
        "ml-collections>=0.1.1",
        "matplotlib>=3.7",
        "numpy>=1.26",
        "scipy>=1.11",  # Hungarian matching for clustering accuracy
        "scikit-learn>=1.4",  # t-SNE embedding maps
        "scikit-image>=0.22",  # sample colour photos for the colour methods' demos and tests
        "tensorboard>=2.16",  # TensorBoard logs (examples/tpu)
    ],
    extras_require={
        # keras-cv layers and backbones work inside keras_ssl pipelines and adapters (tested),
        # but nothing in the library needs them: its own batched layers replace keras-cv's
        # augmentations (README, "Augmentation throughput").
        "keras-cv": ["keras-cv==0.9.*"],
        # LiteRT's interpreter for exported .tflite files (tf.lite.Interpreter is deprecated).
        "tflite": ["ai-edge-litert>=2.3"],
        # keras_ssl.retrieval's approximate index backend (Index(backend="faiss")).
        "retrieval": ["faiss-cpu>=1.8"],
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "ruff>=0.6",
            "keras-cv==0.9.*",
            "faiss-cpu>=1.8",
            "ai-edge-litert>=2.3",
        ],
        # benchmarks/throughput.py --compare-pytorch; pinned: an open range pulls a CUDA build.
        "compare": ["torch==2.13.0"],
    },
    entry_points={"console_scripts": ["keras-ssl=keras_ssl.cli:run"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
