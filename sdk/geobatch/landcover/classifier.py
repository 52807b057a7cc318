"""KMeans land-cover classifier: trained with scikit-learn, stored as JSON, applied with plain numpy.

The model artifact is a small JSON document (cluster centres in standardised feature space, the feature
definition and the scaling), never a pickle: it is safe to load from S3 and needs no scikit-learn at predict
time. Output labels are cluster ids 1..n (0 = nodata, i.e. any input band equal to 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geobatch.landcover.classes import BANDS, NODATA

MODEL_FORMAT = "geobatch.landcover.kmeans"
MODEL_VERSION = 1
FEATURES: tuple[str, ...] = ("B08", "B04", "B03", "NDVI")
REFLECTANCE_SCALE = 1e-4  # L2A DN -> surface reflectance


def valid_mask(bands: np.ndarray) -> np.ndarray:
    """True where every band is non-zero (0 is nodata in L2A COGs and in our reprojected tiles)."""
    return np.all(bands != 0, axis=0)


def features(bands: np.ndarray) -> np.ndarray:
    """(n, 4) float32 features from (3, n) DNs in band order B08, B04, B03: reflectances plus NDVI."""
    refl = bands.reshape(len(BANDS), -1).astype(np.float32) * np.float32(REFLECTANCE_SCALE)
    nir, red = refl[0], refl[1]
    # NDVI separates forest from bright cropland/bare better than raw NIR; guard the all-zero nodata case.
    denom = nir + red
    ndvi = np.divide(nir - red, denom, out=np.zeros_like(nir), where=denom > 0)
    return np.column_stack([refl[0], refl[1], refl[2], ndvi])


@dataclass
class KMeansModel:
    """Cluster centres in standardised feature space plus the scaling that defines that space."""

    centers: np.ndarray  # (k, f) float64
    mean: np.ndarray  # (f,)
    scale: np.ndarray  # (f,)
    features: tuple[str, ...] = FEATURES
    bands: tuple[str, ...] = BANDS
    cluster_names: dict[int, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        """Number of clusters (labels are 1..n_clusters)."""
        return int(self.centers.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable artifact."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "n_clusters": self.n_clusters,
            "bands": list(self.bands),
            "features": list(self.features),
            "reflectance_scale": REFLECTANCE_SCALE,
            "nodata": NODATA,
            "scaling": {"mean": self.mean.tolist(), "scale": self.scale.tolist()},
            "centers": self.centers.tolist(),
            "cluster_names": {str(k): v for k, v in self.cluster_names.items()},
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> KMeansModel:
        """Rebuild from :meth:`to_dict` output, rejecting other formats/versions."""
        if doc.get("format") != MODEL_FORMAT or doc.get("version") != MODEL_VERSION:
            raise ValueError(f"not a {MODEL_FORMAT} v{MODEL_VERSION} model")
        if tuple(doc["features"]) != FEATURES or tuple(doc["bands"]) != BANDS:
            raise ValueError(f"unsupported feature definition {doc['features']} / {doc['bands']}")
        return cls(
            centers=np.asarray(doc["centers"], dtype=np.float64),
            mean=np.asarray(doc["scaling"]["mean"], dtype=np.float64),
            scale=np.asarray(doc["scaling"]["scale"], dtype=np.float64),
            cluster_names={int(k): v for k, v in doc.get("cluster_names", {}).items()},
            metadata=dict(doc.get("metadata", {})),
        )

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> KMeansModel:
        """Parse a JSON string produced by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write the JSON artifact to a local file."""
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> KMeansModel:
        """Read a JSON artifact from a local file."""
        return cls.from_json(Path(path).read_text())

    def predict(self, bands: np.ndarray) -> np.ndarray:
        """Labels 1..k for (3, ...) DNs (B08, B04, B03); 0 where any band is 0. Shape = bands.shape[1:]."""
        out_shape = bands.shape[1:]
        flat = bands.reshape(len(BANDS), -1)
        valid = valid_mask(flat)
        labels = np.zeros(flat.shape[1], dtype=np.uint8)
        if valid.any():
            x = (features(flat[:, valid]).astype(np.float64) - self.mean) / self.scale
            # argmin ||x - c||² = argmin (||c||² - 2 x·c): one matmul, no per-pixel Python.
            d = (self.centers**2).sum(axis=1) - 2.0 * (x @ self.centers.T)
            labels[valid] = np.argmin(d, axis=1).astype(np.uint8) + 1
        return labels.reshape(out_shape)


def sample_features(bands: np.ndarray, sample_size: int, seed: int) -> np.ndarray:
    """Random sample (without replacement) of valid-pixel features from (3, H, W) or (3, n) DNs."""
    flat = bands.reshape(len(BANDS), -1)
    idx = np.flatnonzero(valid_mask(flat))
    if idx.size == 0:
        raise ValueError("no valid pixels to train on")
    rng = np.random.default_rng(seed)
    if idx.size > sample_size:
        idx = np.sort(rng.choice(idx, size=sample_size, replace=False))
    return features(flat[:, idx]).astype(np.float64)


def train_kmeans(
    bands: np.ndarray, n_clusters: int = 5, *, sample_size: int = 100_000, seed: int = 0, n_init: int = 4
) -> tuple[KMeansModel, Any]:
    """Fit scikit-learn KMeans on a sample of valid pixels; returns (model, fitted sklearn estimator).

    Features are standardised first so NDVI (range ~[-1, 1]) and reflectances weigh comparably. Label
    ``i + 1`` of the JSON model equals sklearn label ``i``.
    """
    from sklearn.cluster import KMeans

    x = sample_features(bands, sample_size, seed)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit((x - mean) / scale)
    model = KMeansModel(
        centers=np.asarray(km.cluster_centers_, dtype=np.float64),
        mean=mean,
        scale=scale,
        metadata={"trained_on_pixels": int(x.shape[0]), "seed": seed, "inertia": float(km.inertia_)},
    )
    return model, km


def confusion(pred: np.ndarray, truth: np.ndarray, n_pred: int = 5, n_true: int = 5) -> np.ndarray:
    """(n_pred, n_true) counts over pixels where both labels are non-zero (labels 1..n)."""
    p = np.asarray(pred).ravel().astype(np.int64)
    t = np.asarray(truth).ravel().astype(np.int64)
    ok = (p > 0) & (t > 0) & (p <= n_pred) & (t <= n_true)
    flat = (p[ok] - 1) * n_true + (t[ok] - 1)
    return np.bincount(flat, minlength=n_pred * n_true).reshape(n_pred, n_true)


def match_from_confusion(cm: np.ndarray) -> dict[int, int]:
    """Hungarian matching maximising agreement: {cluster id: class id} (both 1-based)."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-cm)
    return {int(r) + 1: int(c) + 1 for r, c in zip(rows, cols, strict=True)}


def match_clusters_to_classes(pred: np.ndarray, truth: np.ndarray, n_clusters: int = 5) -> dict[int, int]:
    """Cluster-to-class mapping (Hungarian on the confusion matrix of valid pixels)."""
    n_true = max(int(np.max(truth)), n_clusters)
    return match_from_confusion(confusion(pred, truth, n_clusters, n_true))


def relabel(pred: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Apply a {cluster: class} mapping with a lookup table (0 stays 0)."""
    lut = np.zeros(max([*mapping.keys(), int(np.max(pred)), 0]) + 1, dtype=np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut[pred]


def agreement(pred: np.ndarray, truth: np.ndarray, mapping: dict[int, int] | None = None) -> float:
    """Fraction of pixels valid in both rasters whose (matched) label equals the truth."""
    if mapping is None:
        mapping = match_clusters_to_classes(pred, truth)
    valid = (np.asarray(pred) > 0) & (np.asarray(truth) > 0)
    if not valid.any():
        return float("nan")
    return float(np.mean(relabel(np.asarray(pred)[valid], mapping) == np.asarray(truth)[valid]))
