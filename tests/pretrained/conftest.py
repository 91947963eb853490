import numpy as np
import pytest


def numpy_knn_accuracy(train, train_labels, test, test_labels, k=20, temperature=0.07):
    """Weighted kNN on cosine similarity, written from the definition (votes exp(s / T))."""
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    similarity = test.astype(np.float64) @ train.astype(np.float64).T
    neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(test), int(train_labels.max()) + 1))
    for row, columns in enumerate(neighbours):
        np.add.at(votes[row], train_labels[columns], np.exp(similarity[row, columns] / temperature))
    return float(np.mean(votes.argmax(axis=1) == test_labels))


@pytest.fixture
def numpy_knn():
    """An independent NumPy weighted kNN (k = 20, T = 0.07): ``fn(train, y, test, y) -> acc``."""
    return numpy_knn_accuracy
