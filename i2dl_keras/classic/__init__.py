"""i2dl_keras.classic: the course's machine-learning basics as Keras models and helpers.

kNN, hold-out and k-fold cross-validation, linear least squares and linear regression,
logistic regression, an NBSVM text classifier, k-means, PCA and bagging ensembles ("Machine
Learning Basics" and "Bagging and Ensemble Methods" in the course notes).
"""

from i2dl_keras.classic.bagging_ensemble import BaggingEnsemble, bootstrap_fit, bootstrap_indices
from i2dl_keras.classic.cross_validation import (
    KFoldResult,
    k_fold,
    k_fold_indices,
    train_val_split,
)
from i2dl_keras.classic.kmeans import KMeans
from i2dl_keras.classic.knn_classifier import KNNClassifier
from i2dl_keras.classic.linear_regression import LinearRegression, linear_least_squares
from i2dl_keras.classic.logistic_regression import LogisticRegression
from i2dl_keras.classic.nbsvm_classifier import NBSVMClassifier
from i2dl_keras.classic.pca import PCA

__all__ = [
    "BaggingEnsemble",
    "KFoldResult",
    "KMeans",
    "KNNClassifier",
    "LinearRegression",
    "LogisticRegression",
    "NBSVMClassifier",
    "PCA",
    "bootstrap_fit",
    "bootstrap_indices",
    "k_fold",
    "k_fold_indices",
    "linear_least_squares",
    "train_val_split",
]
