"""Evaluation protocols for frozen encoders (features, kNN, linear probe) and plots: training
curves, view pairs, reconstructions, generated samples."""

from keras_ssl.evaluation.clustering import clustering_accuracy, contingency_table
from keras_ssl.evaluation.efficiency import data_efficiency
from keras_ssl.evaluation.features import (
    check_features,
    check_labelled_data,
    check_labels,
    extract_features,
    extract_labelled_features,
    l2_normalize,
)
from keras_ssl.evaluation.fine_tune import clone_encoder, fine_tune, layer_groups
from keras_ssl.evaluation.fractions import label_fraction
from keras_ssl.evaluation.knn import knn_accuracy, knn_eval, knn_predict, knn_sweep
from keras_ssl.evaluation.linear import linear_eval, linear_probe, linear_sweep
from keras_ssl.evaluation.plots import (
    embed_2d,
    new_figure,
    plot_convergence,
    plot_data_efficiency,
    plot_embedding,
    plot_training_curves,
    plot_view_pairs,
    save_figure,
)
from keras_ssl.evaluation.reconstruction import (
    plot_image_columns,
    plot_reconstructions,
    reconstruction_grid,
)
from keras_ssl.evaluation.samples import plot_model_samples, plot_sample_grid
from keras_ssl.evaluation.segmentation import (
    segmentation_metrics,
    segmentation_protocol,
    segmentation_transfer,
)

__all__ = [
    "data_efficiency",
    "clone_encoder",
    "fine_tune",
    "layer_groups",
    "knn_eval",
    "knn_sweep",
    "linear_eval",
    "linear_sweep",
    "embed_2d",
    "new_figure",
    "plot_convergence",
    "plot_data_efficiency",
    "plot_embedding",
    "check_features",
    "clustering_accuracy",
    "contingency_table",
    "check_labelled_data",
    "check_labels",
    "extract_features",
    "extract_labelled_features",
    "knn_accuracy",
    "knn_predict",
    "l2_normalize",
    "label_fraction",
    "linear_probe",
    "plot_image_columns",
    "plot_model_samples",
    "plot_reconstructions",
    "plot_sample_grid",
    "plot_training_curves",
    "plot_view_pairs",
    "save_figure",
    "reconstruction_grid",
    "segmentation_metrics",
    "segmentation_protocol",
    "segmentation_transfer",
]
